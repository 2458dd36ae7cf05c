package pki

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallSharedLetsAServerIssueItsOwnLeaves(t *testing.T) {
	first := t.TempDir()
	if _, err := Ensure(request(first), nil); err != nil {
		t.Fatal(err)
	}
	shared, err := ReadShared(first)
	if err != nil {
		t.Fatal(err)
	}
	second := t.TempDir()
	if err := InstallShared(second, shared); err != nil {
		t.Fatal(err)
	}
	// Installing the same files again (a retried join) is fine.
	if err := InstallShared(second, shared); err != nil {
		t.Fatalf("second install of the same files: %v", err)
	}
	req := request(second)
	req.EtcdIPs = []net.IP{net.ParseIP("192.0.2.2")}
	f, err := Ensure(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range SharedFiles {
		got, _ := os.ReadFile(filepath.Join(second, name))
		if !bytes.Equal(got, shared[name]) {
			t.Errorf("%s differs from the first server's", name)
		}
		st, _ := os.Stat(filepath.Join(second, name))
		if strings.HasSuffix(name, ".key") && st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %o", name, st.Mode().Perm())
		}
	}
	peer := readCert(t, f.EtcdPeerCert)
	if len(peer.IPAddresses) != 1 || !peer.IPAddresses[0].Equal(net.ParseIP("192.0.2.2")) {
		t.Errorf("peer certificate IPs %v, want the second server's own", peer.IPAddresses)
	}
	if err := peer.CheckSignatureFrom(readCert(t, filepath.Join(first, "etcd/peer-ca.crt"))); err != nil {
		t.Errorf("peer certificate not from the shared peer CA: %v", err)
	}
	if _, err := os.Stat(filepath.Join(second, ".join-check")); !os.IsNotExist(err) {
		t.Errorf("staging dir left behind: %v", err)
	}
}

func TestInstallSharedRefusesAnotherClustersCAs(t *testing.T) {
	first, other := t.TempDir(), t.TempDir()
	for _, d := range []string{first, other} {
		if _, err := Ensure(request(d), nil); err != nil {
			t.Fatal(err)
		}
	}
	shared, err := ReadShared(first)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := ReadShared(other)
	err = InstallShared(other, shared)
	if err == nil || !strings.Contains(err.Error(), "another cluster") {
		t.Fatalf("err = %v, want a refusal naming another cluster", err)
	}
	after, _ := ReadShared(other)
	for name := range before {
		if !bytes.Equal(before[name], after[name]) {
			t.Errorf("%s was overwritten", name)
		}
	}
}

func TestInstallSharedRefusesBadFilesWritingNothing(t *testing.T) {
	first := t.TempDir()
	if _, err := Ensure(request(first), nil); err != nil {
		t.Fatal(err)
	}
	good, _ := ReadShared(first)
	cases := map[string]func(map[string][]byte){
		"missing":      func(m map[string][]byte) { delete(m, "client-ca.key") },
		"unexpected":   func(m map[string][]byte) { m["../../etc/passwd"] = []byte("x") },
		"key mismatch": func(m map[string][]byte) { m["server-ca.key"] = m["client-ca.key"] },
		"not a CA":     func(m map[string][]byte) { m["server-ca.crt"] = []byte("garbage") },
		"bad sa key":   func(m map[string][]byte) { m["service-account.key"] = []byte("garbage") },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range good {
				files[k] = v
			}
			mutate(files)
			dir := t.TempDir()
			if err := InstallShared(dir, files); err == nil {
				t.Fatal("accepted")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("wrote %v", entries)
			}
		})
	}
}
