package certificate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/shared/datadir"
)

// dataDir issues a server's certificates (as of issued) into a new data
// dir and gives it a node certificate file as an agent would have.
func dataDir(t *testing.T, issued time.Time) string {
	t.Helper()
	dir := t.TempDir()
	files, err := pki.Ensure(pki.Request{Dir: datadir.NewServer(dir).TLSDir, Now: issued, Etcd: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cred := datadir.NewAgent(dir, datadir.DefaultRunDir).CredDir
	if err := os.MkdirAll(cred, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(files.AdminCert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cred, "kubelet-client.crt"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheckListsEveryCertificateWithDaysLeft(t *testing.T) {
	issued := time.Now().Add(-300 * 24 * time.Hour)
	dir := dataDir(t, issued)
	now := time.Now()
	var out bytes.Buffer
	if err := check(&out, dir, "json", now); err != nil {
		t.Fatal(err)
	}
	var infos []Info
	if err := json.Unmarshal(out.Bytes(), &infos); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	byFile := map[string]Info{}
	for _, i := range infos {
		byFile[strings.TrimPrefix(i.File, dir+"/")] = i
	}
	for _, want := range []string{"server/tls/server-ca.crt", "server/tls/serving-kube-apiserver.crt", "server/tls/client-admin.crt",
		"server/tls/etcd/server.crt", "agent/cred/kubelet-client.crt"} {
		if _, ok := byFile[want]; !ok {
			t.Errorf("%s is not listed; got %v", want, infos)
		}
	}
	leaf := byFile["server/tls/serving-kube-apiserver.crt"]
	if leaf.DaysLeft < 63 || leaf.DaysLeft > 65 || leaf.CA {
		t.Errorf("serving certificate: %+v, want about 64 days left (365 - 300), not a CA", leaf)
	}
	if ca := byFile["server/tls/server-ca.crt"]; !ca.CA || ca.DaysLeft < 3000 {
		t.Errorf("server CA: %+v, want a CA with years left", ca)
	}
	if !strings.Contains(leaf.Subject, "kube-apiserver") {
		t.Errorf("subject %q", leaf.Subject)
	}

	// A year on, the leaves are expired and the table says so.
	out.Reset()
	if err := check(&out, dir, "table", now.Add(100*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	if !strings.Contains(table, "server/tls/client-admin.crt") || !strings.Contains(table, "EXPIRED") || !strings.Contains(table, "ok (CA)") {
		t.Errorf("table:\n%s", table)
	}
}

func TestCheckRefusesBadInput(t *testing.T) {
	var out bytes.Buffer
	if err := check(&out, t.TempDir(), "table", time.Now()); err == nil || !strings.Contains(err.Error(), "no certificates") {
		t.Errorf("an empty data dir: err = %v", err)
	}
	dir := dataDir(t, time.Now())
	app := &cli.App{Commands: []*cli.Command{Command()}, Writer: &out}
	if err := app.Run([]string{"kedge", "certificate", "check", "--data-dir", dir, "--output", "yaml"}); err == nil || !strings.Contains(err.Error(), "--output") {
		t.Errorf("--output yaml: err = %v", err)
	}
	bad := filepath.Join(datadir.NewServer(dir).TLSDir, "broken.crt")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := check(&out, dir, "table", time.Now()); err == nil || !strings.Contains(err.Error(), "broken.crt") {
		t.Errorf("a broken .crt: err = %v", err)
	}
}
