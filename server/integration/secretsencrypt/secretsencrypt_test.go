// Package secretsencrypt checks Secrets encryption at rest end to end with
// the real binary: the raw value of a Secret in the datastore (SQLite's
// state.db, embedded etcd) is ciphertext under the key kedge generated,
// readable through the API across restarts and key rotations, and plain
// text without --secrets-encryption.
package secretsencrypt

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver kine uses for state.db
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/embedded/etcdcheck"
	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/server/secretsencrypt"
	"github.com/kedge/kedge/shared/datadir"
)

// store reads the raw stored value of a Secret.
type store func(t *testing.T, ns, name string) []byte

// sqliteStore reads the newest row of the Secret's key from state.db,
// opened read-only beside the running kine.
func sqliteStore(dataDir string) store {
	return func(t *testing.T, ns, name string) []byte {
		t.Helper()
		db, err := sql.Open("sqlite3", "file:"+datadir.NewServer(dataDir).SQLiteFile+"?mode=ro&_busy_timeout=30000")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var value []byte
		key := "/registry/secrets/" + ns + "/" + name
		if err := db.QueryRow("SELECT value FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1", key).Scan(&value); err != nil {
			t.Fatalf("raw row of %s: %v", key, err)
		}
		return value
	}
}

// etcdStore reads the Secret's key from the embedded etcd with its client
// certificate.
func etcdStore(dataDir string, port int) store {
	return func(t *testing.T, ns, name string) []byte {
		t.Helper()
		dir := filepath.Join(datadir.NewServer(dataDir).TLSDir, "etcd")
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		cli, err := etcdcheck.Client(ctx, etcdcheck.Target{Endpoints: []string{"https://127.0.0.1:" + strconv.Itoa(port)},
			CAFile: filepath.Join(dir, "server-ca.crt"), CertFile: filepath.Join(dir, "client.crt"), KeyFile: filepath.Join(dir, "client.key")})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		key := "/registry/secrets/" + ns + "/" + name
		resp, err := cli.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("etcd get %s: %v (%d keys)", key, err, len(resp.Kvs))
		}
		return resp.Kvs[0].Value
	}
}

// assertEncrypted: the raw value is secretbox ciphertext under key, and
// the plain value appears nowhere in it.
func assertEncrypted(t *testing.T, raw []byte, key, value string) {
	t.Helper()
	prefix := "k8s:enc:" + secretsencrypt.Provider + ":v1:" + key + ":"
	if !bytes.HasPrefix(raw, []byte(prefix)) {
		t.Fatalf("stored value starts %q, want %q", head(raw), prefix)
	}
	if bytes.Contains(raw, []byte(value)) {
		t.Fatalf("the stored value holds the Secret's value in plain text")
	}
}

func assertPlain(t *testing.T, raw []byte, value string) {
	t.Helper()
	if bytes.HasPrefix(raw, []byte("k8s:enc:")) || !bytes.Contains(raw, []byte(value)) {
		t.Fatalf("want the Secret stored in plain text, got %q...", head(raw))
	}
}

func head(b []byte) []byte { return b[:min(len(b), 48)] }

func createSecret(t *testing.T, client kubernetes.Interface, name, value string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string][]byte{"password": []byte(value)}}
	if _, err := client.CoreV1().Secrets("default").Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func assertReadable(t *testing.T, client kubernetes.Interface, secrets map[string]string) {
	t.Helper()
	for name, value := range secrets {
		s, err := client.CoreV1().Secrets("default").Get(t.Context(), name, metav1.GetOptions{})
		if err != nil || string(s.Data["password"]) != value {
			t.Fatalf("Secret %s through the API: %v (value matches: %v)", name, err, err == nil && string(s.Data["password"]) == value)
		}
	}
}

// keys reads the key names in the data dir's encryption config.
func keys(t *testing.T, dataDir string) secretsencrypt.Config {
	t.Helper()
	path := datadir.NewServer(dataDir).EncryptionConfig
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := secretsencrypt.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kedge runs the binary with $KUBECONFIG set to the server's admin kubeconfig.
func kedge(t *testing.T, c config.Config, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Binary(t), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.WriteKubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func status(t *testing.T, c config.Config) secretsencrypt.Status {
	t.Helper()
	out, err := kedge(t, c, "secrets-encrypt", "status", "--data-dir", c.DataDir, "--output", "json")
	if err != nil {
		t.Fatalf("kedge secrets-encrypt status: %v\n%s", err, out)
	}
	var st secretsencrypt.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status output %q: %v", out, err)
	}
	return st
}

func rotate(t *testing.T, c config.Config) string {
	t.Helper()
	start := time.Now()
	out, err := kedge(t, c, "secrets-encrypt", "rotate-keys", "--data-dir", c.DataDir)
	if err != nil {
		t.Fatalf("kedge secrets-encrypt rotate-keys: %v\n%s", err, out)
	}
	t.Logf("rotate-keys took %s:\n%s", time.Since(start).Round(100*time.Millisecond), out)
	return out
}

// TestSecretsEncryptionSQLite walks one data dir through the life of the
// feature: plain text without the flag; the flag turned on (old Secrets
// still readable, new ones encrypted); a restart; rotate-keys (every
// Secret under the new key, the old key gone); an interrupted rotation
// finished; the flag turned off (everything still readable, new Secrets
// plain).
func TestSecretsEncryptionSQLite(t *testing.T) {
	dir := t.TempDir()
	c := harness.NewConfig(t, dir)
	raw := sqliteStore(dir)
	value := func(name string) string { return "value-of-" + name + "-" + testenv.RandomID(t) }
	secrets := map[string]string{}

	// Without the flag: plain text, and no key file.
	s := harness.StartBinary(t, c)
	secrets["plain"] = value("plain")
	createSecret(t, s.Client, "plain", secrets["plain"])
	assertPlain(t, raw(t, "default", "plain"), secrets["plain"])
	if _, err := os.Stat(datadir.NewServer(dir).EncryptionConfig); !os.IsNotExist(err) {
		t.Fatalf("an encryption config without the flag: %v", err)
	}
	if st := status(t, c); st.Enabled || st.APIServer.LoadedHash != "" || !st.APIServer.Reachable {
		t.Fatalf("status without the flag: %+v", st)
	}
	s.Stop(t)

	// The flag on: a key, new Secrets encrypted with it, old ones readable.
	c.SecretsEncryption = true
	s = harness.StartBinary(t, c)
	k1 := keys(t, dir)
	if !k1.Enabled() || len(k1.Keys) != 1 {
		t.Fatalf("config after the first start with the flag: %v", k1.KeyNames())
	}
	secrets["encrypted"] = value("encrypted")
	createSecret(t, s.Client, "encrypted", secrets["encrypted"])
	assertEncrypted(t, raw(t, "default", "encrypted"), k1.Keys[0].Name, secrets["encrypted"])
	assertReadable(t, s.Client, secrets)
	st := status(t, c)
	if !st.Enabled || st.ActiveKey != k1.Keys[0].Name || !slices.Equal(st.Keys, k1.KeyNames()) || !st.APIServer.LoadedCurrent {
		t.Fatalf("status with the flag: %+v", st)
	}
	if out, err := kedge(t, c, "secrets-encrypt", "status", "--data-dir", dir); err != nil ||
		!strings.Contains(out, "enabled (secretbox)") || !strings.Contains(out, "Active key:          "+k1.Keys[0].Name) ||
		!strings.Contains(out, "runs the current config") || strings.Contains(out, k1.Keys[0].Secret) {
		t.Fatalf("status text: %v\n%s", err, out)
	}

	// A restart: the same key, everything readable.
	s.Stop(t)
	if out, err := kedge(t, c, "secrets-encrypt", "rotate-keys", "--data-dir", dir); err == nil || !strings.Contains(out, "needs the server running") {
		t.Fatalf("rotate-keys without a server: %v\n%s", err, out)
	}
	if got := keys(t, dir); !slices.Equal(got.Keys, k1.Keys) {
		t.Fatalf("a failed rotate-keys changed the keys: %v", got.KeyNames())
	}
	s = harness.StartBinary(t, c)
	if got := keys(t, dir); !slices.Equal(got.Keys, k1.Keys) {
		t.Fatalf("a restart changed the keys: %v", got.KeyNames())
	}
	assertReadable(t, s.Client, secrets)

	// rotate-keys: a new key; every Secret, the plain one too, under it.
	out := rotate(t, c)
	k2 := keys(t, dir)
	if len(k2.Keys) != 1 || k2.Keys[0].Name == k1.Keys[0].Name || !strings.Contains(out, "dropped key(s) ["+k1.Keys[0].Name+"]") {
		t.Fatalf("keys after rotate-keys: %v (before %v)", k2.KeyNames(), k1.KeyNames())
	}
	if bytes.Contains(mustRead(t, datadir.NewServer(dir).EncryptionConfig), []byte(k1.Keys[0].Secret)) {
		t.Fatal("the old key is still in the config")
	}
	for name, v := range secrets {
		assertEncrypted(t, raw(t, "default", name), k2.Keys[0].Name, v)
	}
	assertReadable(t, s.Client, secrets)
	if st := status(t, c); st.ActiveKey != k2.Keys[0].Name || len(st.Keys) != 1 || !st.APIServer.LoadedCurrent || st.RotationUnfinished {
		t.Fatalf("status after rotate-keys: %+v", st)
	}

	// A rotation that died after adding its key: the next run finishes it
	// with that key instead of adding another.
	k3, err := secretsencrypt.NewKey(time.Now().Add(time.Hour), k2.KeyNames())
	if err != nil {
		t.Fatal(err)
	}
	if err := secretsencrypt.Write(datadir.NewServer(dir).EncryptionConfig, secretsencrypt.Config{Keys: []secretsencrypt.Key{k3, k2.Keys[0]}}); err != nil {
		t.Fatal(err)
	}
	if st := status(t, c); !st.RotationUnfinished {
		t.Fatalf("status of an unfinished rotation: %+v", st)
	}
	out = rotate(t, c)
	if got := keys(t, dir); !slices.Equal(got.KeyNames(), []string{k3.Name}) || !strings.Contains(out, "finishing") {
		t.Fatalf("after finishing the rotation: keys %v", got.KeyNames())
	}
	for name, v := range secrets {
		assertEncrypted(t, raw(t, "default", name), k3.Name, v)
	}

	// The flag off: Secrets written while it was on stay readable, new
	// ones are plain text.
	s.Stop(t)
	c.SecretsEncryption = false
	s = harness.StartBinary(t, c)
	assertReadable(t, s.Client, secrets)
	secrets["after-off"] = value("after-off")
	createSecret(t, s.Client, "after-off", secrets["after-off"])
	assertPlain(t, raw(t, "default", "after-off"), secrets["after-off"])
	assertEncrypted(t, raw(t, "default", "encrypted"), k3.Name, secrets["encrypted"])
	if st := status(t, c); st.Enabled || !slices.Equal(st.Keys, []string{k3.Name}) || !st.APIServer.LoadedCurrent {
		t.Fatalf("status with the flag off again: %+v", st)
	}
	if out, err := kedge(t, c, "secrets-encrypt", "rotate-keys", "--data-dir", dir); err == nil || !strings.Contains(out, "turned off") {
		t.Fatalf("rotate-keys with encryption off: %v\n%s", err, out)
	}
}

// TestSecretsEncryptionEmbeddedEtcd: the raw etcd value is ciphertext,
// readable after a restart and after rotate-keys.
func TestSecretsEncryptionEmbeddedEtcd(t *testing.T) {
	dir := t.TempDir()
	c := harness.NewConfig(t, dir)
	c.ClusterInit, c.SecretsEncryption = true, true
	raw := etcdStore(dir, c.EtcdClientPort)
	secrets := map[string]string{"in-etcd": "etcd-value-" + testenv.RandomID(t)}
	s := harness.StartBinary(t, c)
	createSecret(t, s.Client, "in-etcd", secrets["in-etcd"])
	k1 := keys(t, dir)
	assertEncrypted(t, raw(t, "default", "in-etcd"), k1.Keys[0].Name, secrets["in-etcd"])
	s.Stop(t)
	s = harness.StartBinary(t, c)
	assertReadable(t, s.Client, secrets)
	rotate(t, c)
	k2 := keys(t, dir)
	if len(k2.Keys) != 1 || k2.Keys[0].Name == k1.Keys[0].Name {
		t.Fatalf("keys after rotate-keys: %v", k2.KeyNames())
	}
	assertEncrypted(t, raw(t, "default", "in-etcd"), k2.Keys[0].Name, secrets["in-etcd"])
	assertReadable(t, s.Client, secrets)
}

// TestDamagedEncryptionConfig: one clear error at start, before anything
// else is written, and the file (the only copy of the keys) untouched.
func TestDamagedEncryptionConfig(t *testing.T) {
	dir := t.TempDir()
	c := harness.NewConfig(t, dir)
	c.SecretsEncryption = true
	path := datadir.NewServer(dir).EncryptionConfig
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	damaged := []byte(`{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{"resources":["secrets"],"providers":[{"secretbox":{"keys":[{"name":"k1","secret":"dG9vIHNob3J0"}]}},{"identity":{}}]}]}`)
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, harness.Binary(t), harness.Args(c)...).CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit %d (%v), want 1\n%s", code, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "kedge: ") || !strings.Contains(last, path) || !strings.Contains(last, "does not overwrite") {
		t.Errorf("error line %q does not name the file and what to do", last)
	}
	if got := mustRead(t, path); !bytes.Equal(got, damaged) {
		t.Error("the damaged file was changed")
	}
	if _, err := os.Stat(datadir.NewServer(dir).TLSDir); !os.IsNotExist(err) {
		t.Errorf("certificates were written before the check: %v", err)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return 0
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJoiningNeedsTheSharedKey: a server joining others with the flag but
// without their key file is refused before it joins, so it never stores
// Secrets under a key of its own.
func TestJoiningNeedsTheSharedKey(t *testing.T) {
	dir := t.TempDir()
	c := harness.NewConfig(t, dir)
	c.SecretsEncryption = true
	args := append(harness.Args(c), "--server", "https://127.0.0.1:1", "--token", "K10"+strings.Repeat("ab", 32)+"::server:0123456789abcdef0123")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, harness.Binary(t), args...).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "copy "+datadir.NewServer(dir).EncryptionConfig) {
		t.Fatalf("exit %d, want 1 and a line saying to copy the key file:\n%s", code, out)
	}
	if _, err := os.Stat(datadir.NewServer(dir).EncryptionConfig); !os.IsNotExist(err) {
		t.Fatalf("a key was generated: %v", err)
	}
}

// TestSnapshotOfAnEncryptedCluster: a snapshot carries the key, so a
// cluster restored onto a new data dir reads the Secrets it stored
// encrypted.
func TestSnapshotOfAnEncryptedCluster(t *testing.T) {
	oldDir := t.TempDir()
	c := harness.NewConfig(t, oldDir)
	c.SecretsEncryption = true
	s := harness.StartBinary(t, c)
	secrets := map[string]string{"backed-up": "backed-up-" + testenv.RandomID(t)}
	createSecret(t, s.Client, "backed-up", secrets["backed-up"])
	key := keys(t, oldDir).Keys[0].Name
	snapDir := t.TempDir()
	out, err := exec.Command(harness.Binary(t), "snapshot", "save", "--data-dir", oldDir, "--dir", snapDir, "--node-name", "old").CombinedOutput()
	if err != nil {
		t.Fatalf("kedge snapshot save: %v\n%s", err, out)
	}
	file := strings.TrimSpace(string(out))
	s.Stop(t)

	newDir := t.TempDir()
	n := harness.NewConfig(t, newDir)
	n.SecretsEncryption = true
	if out, err := exec.Command(harness.Binary(t), append(harness.Args(n), "--cluster-reset", "--restore-path", file)...).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if got := keys(t, newDir); !slices.Equal(got.KeyNames(), []string{key}) {
		t.Fatalf("restored keys %v, want [%s]", got.KeyNames(), key)
	}
	r := harness.StartBinary(t, n)
	assertEncrypted(t, sqliteStore(newDir)(t, "default", "backed-up"), key, secrets["backed-up"])
	assertReadable(t, r.Client, secrets)
}
