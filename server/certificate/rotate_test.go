package certificate

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"

	"github.com/kedge/kedge/shared/datadir"
)

// serials is every certificate file's serial under dir, by path relative to it.
func serials(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	infos, err := Scan(time.Now(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		certs, err := certutil.CertsFromFile(i.File)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, i.File)
		out[rel] = certs[0].SerialNumber.String()
	}
	return out
}

func changed(before, after map[string]string) []string {
	var out []string
	for f, s := range after {
		if before[f] != s {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func TestRotate(t *testing.T) {
	dir := dataDir(t, time.Now().Add(-300*24*time.Hour))
	tlsDir := datadir.NewServer(dir).TLSDir
	request := datadir.NewAgent(dir, datadir.DefaultRunDir).RenewRequest
	start := serials(t, tlsDir)

	for _, bad := range [][]string{{"admin", "no-such-service"}, {"server-ca"}} {
		if err := rotate(&bytes.Buffer{}, dir, bad, time.Now()); err == nil || !strings.Contains(err.Error(), "is not one of") {
			t.Errorf("--service %v: %v", bad, err)
		}
	}
	if got := changed(start, serials(t, tlsDir)); len(got) != 0 {
		t.Fatalf("a refused rotate changed %v", got)
	}

	var out bytes.Buffer
	if err := rotate(&out, dir, []string{"admin", "etcd"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := []string{"client-admin.crt", "etcd/client.crt", "etcd/peer.crt", "etcd/server.crt"}
	if got := changed(start, serials(t, tlsDir)); !slices.Equal(got, want) {
		t.Fatalf("--service admin --service etcd changed %v, want %v", got, want)
	}
	if !strings.Contains(out.String(), "reissued server/tls/client-admin.crt") {
		t.Errorf("output:\n%s", out.String())
	}
	if _, err := os.Stat(request); err == nil {
		t.Error("the node was asked to renew, though not named")
	}
	admin, err := certutil.CertsFromFile(filepath.Join(tlsDir, "client-admin.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(admin[0].NotAfter); left < 364*24*time.Hour {
		t.Errorf("the reissued admin certificate has %s left", left)
	}

	// Everything: every leaf and the node (through its agent); CAs never.
	mid := serials(t, tlsDir)
	if err := rotate(&bytes.Buffer{}, dir, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	got := changed(mid, serials(t, tlsDir))
	for _, f := range got {
		if strings.HasSuffix(f, "ca.crt") {
			t.Errorf("CA %s was rotated", f)
		}
	}
	if len(got) < 9 {
		t.Errorf("rotated only %v", got)
	}
	if _, err := os.Stat(request); err != nil {
		t.Errorf("the node was not asked to renew: %v", err)
	}
	// The reissued certificates still chain to their CAs.
	ca, _ := certutil.CertsFromFile(filepath.Join(tlsDir, "client-ca.crt"))
	pool := x509.NewCertPool()
	pool.AddCert(ca[0])
	admin, _ = certutil.CertsFromFile(filepath.Join(tlsDir, "client-admin.crt"))
	if _, err := admin[0].Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Error(err)
	}
}

func TestRotateNodeWithoutNode(t *testing.T) {
	dir := dataDir(t, time.Now())
	if err := os.RemoveAll(datadir.NewAgent(dir, datadir.DefaultRunDir).CredDir); err != nil {
		t.Fatal(err)
	}
	if err := rotate(&bytes.Buffer{}, dir, []string{"kubelet"}, time.Now()); err == nil || !strings.Contains(err.Error(), "no node certificates") {
		t.Fatalf("kubelet without a node: %v", err)
	}
}
