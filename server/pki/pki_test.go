package pki

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

func request(dir string) Request {
	return Request{
		Dir:          dir,
		APIServerDNS: []string{"localhost", "kubernetes.default.svc.cluster.local", "edge-1"},
		APIServerIPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.43.0.1")},
		Etcd:         true,
		EtcdDNS:      []string{"localhost"},
		EtcdIPs:      []net.IP{net.ParseIP("127.0.0.1")},
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	certs, err := certutil.CertsFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func TestEnsureCreatesCompletePKI(t *testing.T) {
	dir := t.TempDir()
	f, err := Ensure(request(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	serving := readCert(t, f.ServingCert)
	for _, d := range []string{"localhost", "kubernetes.default.svc.cluster.local", "edge-1"} {
		if err := serving.VerifyHostname(d); err != nil {
			t.Errorf("serving cert does not cover %s: %v", d, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.43.0.1"} {
		if err := serving.VerifyHostname(ip); err != nil {
			t.Errorf("serving cert does not cover %s: %v", ip, err)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, f.ServerCA))
	if _, err := serving.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost"}); err != nil {
		t.Errorf("serving cert does not chain to the server CA: %v", err)
	}
	clientRoots := x509.NewCertPool()
	clientRoots.AddCert(readCert(t, f.ClientCA))
	admin := readCert(t, f.AdminCert)
	if _, err := admin.Verify(x509.VerifyOptions{Roots: clientRoots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin cert does not chain to the client CA: %v", err)
	}
	if admin.Subject.CommonName != "system:admin" || !slices.Equal(admin.Subject.Organization, []string{"system:masters"}) {
		t.Errorf("admin subject = %v", admin.Subject)
	}
	if d := time.Until(serving.NotAfter); d < 360*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("serving cert valid for %v, want about a year", d)
	}
	if d := time.Until(readCert(t, f.ServerCA).NotAfter); d < 9*365*24*time.Hour {
		t.Errorf("CA valid for only %v", d)
	}

	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		if strings.HasSuffix(path, ".key") && info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEnsureReusesOnRestart(t *testing.T) {
	dir := t.TempDir()
	f1, err := Ensure(request(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	f2, err := Ensure(request(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f1.Issued) == 0 || len(f2.Issued) != 0 {
		t.Fatalf("issued %d certificates on the first run and %d on the second", len(f1.Issued), len(f2.Issued))
	}
	f1.Issued = nil
	if !reflect.DeepEqual(f1, f2) {
		t.Fatal("paths changed between runs")
	}
	after := snapshot(t, dir)
	for p, b := range before {
		if after[p] != b {
			t.Errorf("%s changed on restart", p)
		}
	}
}

func TestEnsureReissuesForNewSANAndExpiryButKeepsCA(t *testing.T) {
	dir := t.TempDir()
	req := request(dir)
	f, err := Ensure(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	caBefore := snapshot(t, dir)[f.ServerCA]
	oldSerial := readCert(t, f.ServingCert).SerialNumber

	req.APIServerDNS = append(req.APIServerDNS, "new.example.com")
	if _, err := Ensure(req, nil); err != nil {
		t.Fatal(err)
	}
	serving := readCert(t, f.ServingCert)
	if serving.VerifyHostname("new.example.com") != nil || serving.SerialNumber.Cmp(oldSerial) == 0 {
		t.Fatal("serving cert not reissued for a new --tls-san")
	}

	admin := readCert(t, f.AdminCert)
	adminKey, _ := os.ReadFile(f.AdminKey)
	req.Now = time.Now().Add(243 * 24 * time.Hour) // 122 days left: not yet
	if g, err := Ensure(req, nil); err != nil || len(g.Issued) != 0 {
		t.Fatalf("with 122 days left: issued %v, error %v", g.Issued, err)
	}
	req.Now = time.Now().Add(246 * 24 * time.Hour) // 119 days left
	g, err := Ensure(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	renewed := readCert(t, f.AdminCert)
	if renewed.SerialNumber.Cmp(admin.SerialNumber) == 0 {
		t.Fatal("admin cert with 119 days left was not renewed")
	}
	if !renewed.NotAfter.After(admin.NotAfter.Add(200 * 24 * time.Hour)) {
		t.Errorf("renewed admin cert expires %s, the old one %s", renewed.NotAfter, admin.NotAfter)
	}
	if key, _ := os.ReadFile(f.AdminKey); string(key) != string(adminKey) {
		t.Error("the renewal replaced the admin key; it keeps it")
	}
	var names []string
	for _, is := range g.Issued {
		names = append(names, is.Name)
		if is.Replaced == nil {
			t.Errorf("%s: the certificate it replaced is not reported", is.Name)
		}
	}
	if !slices.Contains(names, "client-admin") || !slices.Contains(names, "serving-kube-apiserver") {
		t.Errorf("renewed %v, want every leaf", names)
	}
	if snapshot(t, dir)[f.ServerCA] != caBefore {
		t.Fatal("server CA changed")
	}
}

func TestEnsureRefusesDamagedCA(t *testing.T) {
	dir := t.TempDir()
	f, err := Ensure(request(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.ClientCA, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(request(dir), nil); err == nil || !strings.Contains(err.Error(), "client-ca") {
		t.Fatalf("damaged CA: err = %v", err)
	}
	if b, _ := os.ReadFile(f.ClientCA); string(b) != "garbage" {
		t.Fatal("damaged CA was overwritten")
	}
	os.Remove(f.ServerCAKey)
	if _, err := Ensure(request(dir), nil); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("half CA: err = %v", err)
	}
	if _, err := os.Stat(f.ServerCAKey); err == nil {
		t.Fatal("a new key was written next to the old CA certificate")
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(path)
			out[path] = string(b)
		}
		return nil
	})
	return out
}

func TestEnsureMetricsServingCertOnlyWhenAsked(t *testing.T) {
	dir := t.TempDir()
	f, err := Ensure(request(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.MetricsServingCert != "" {
		t.Errorf("metrics serving certificate %s issued without MetricsServerDNS", f.MetricsServingCert)
	}
	req := request(dir)
	req.MetricsServerDNS = []string{"metrics-server.kube-system.svc"}
	if f, err = Ensure(req, nil); err != nil {
		t.Fatal(err)
	}
	cert, ca := readCert(t, f.MetricsServingCert), readCert(t, f.ServerCA)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "metrics-server.kube-system.svc",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("metrics serving certificate: %v", err)
	}
}

func TestReissueKeepsKeyAndNamesAndRefusesBadNames(t *testing.T) {
	dir := t.TempDir()
	req := request(dir)
	req.Etcd = true
	f, err := Ensure(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	for _, names := range [][]string{{"client-admin", "no-such"}, {"server-ca"}, {"client-admin", "etcd/nothing"}} {
		if _, err := Reissue(dir, names, time.Now()); err == nil {
			t.Errorf("Reissue %v succeeded", names)
		}
	}
	if !reflect.DeepEqual(before, snapshot(t, dir)) {
		t.Fatal("a refused Reissue changed the TLS dir")
	}
	old := readCert(t, f.ServingCert)
	oldEtcd := readCert(t, f.EtcdPeerCert)
	issued, err := Reissue(dir, []string{"serving-kube-apiserver", "etcd/peer"}, time.Now().Add(time.Hour))
	if err != nil || len(issued) != 2 {
		t.Fatalf("Reissue: %v, %v", issued, err)
	}
	for _, pair := range [][2]*x509.Certificate{{old, readCert(t, f.ServingCert)}, {oldEtcd, readCert(t, f.EtcdPeerCert)}} {
		was, now := pair[0], pair[1]
		if now.SerialNumber.Cmp(was.SerialNumber) == 0 || !now.NotAfter.After(was.NotAfter) {
			t.Errorf("%s: not reissued", was.Subject.CommonName)
		}
		if !reflect.DeepEqual(now.DNSNames, was.DNSNames) || len(now.IPAddresses) != len(was.IPAddresses) ||
			!reflect.DeepEqual(now.ExtKeyUsage, was.ExtKeyUsage) || now.Subject.CommonName != was.Subject.CommonName {
			t.Errorf("%s: names or usages changed", was.Subject.CommonName)
		}
		if !publicKeysEqual(now.PublicKey, was.PublicKey) {
			t.Errorf("%s: the key changed", was.Subject.CommonName)
		}
	}
	if err := readCert(t, f.EtcdPeerCert).CheckSignatureFrom(readCert(t, f.EtcdPeerCA)); err != nil {
		t.Errorf("etcd peer certificate not signed by the etcd peer CA: %v", err)
	}
	after := snapshot(t, dir)
	if after[f.AdminCert] != before[f.AdminCert] || after[f.ServerCA] != before[f.ServerCA] {
		t.Error("Reissue touched a certificate it was not asked for")
	}
}
