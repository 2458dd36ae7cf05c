// Package joining checks the join API on a real server: CA pinning, token
// checks, node passwords, and that issued credentials are node identities
// that NodeRestriction applies to.
package joining

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/server/join/nodepassword"
	"github.com/kedge/kedge/shared/token"
)

func TestJoin(t *testing.T) {
	ctx := t.Context()
	dataDir := t.TempDir()
	c := harness.NewConfig(t, dataDir)
	srv := harness.StartJoinable(t, c)
	server, serverToken, agentToken := srv.URL, srv.ServerToken, srv.AgentToken
	caFile, _ := os.ReadFile(filepath.Join(dataDir, "server/tls/server-ca.crt"))

	// Pinning.
	ca, err := join.FetchCA(ctx, server, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	if string(ca) != string(caFile) {
		t.Fatal("fetched CA differs from the server's CA file")
	}
	wrongHash := agentToken
	wrongHash.CAHash = token.CAHash([]byte("another CA"))
	if _, err := join.FetchCA(ctx, server, wrongHash); !errors.Is(err, join.ErrCAMismatch) {
		t.Fatalf("wrong CA hash: err = %v", err)
	}
	if _, err := join.FetchCA(ctx, server, token.Token{Secret: harness.AgentSecret}); err == nil {
		t.Fatal("a token without a CA hash was trusted")
	}

	node := join.Node{Name: "edge-1", Password: "pw-of-edge-1", Addresses: []string{"192.0.2.21", "edge-1.local"}}

	// A wrong token is refused and writes nothing.
	bad := agentToken
	bad.Secret = "not-the-token-0123456789"
	if _, err := join.RequestCerts(ctx, server, ca, bad, node); err == nil || !strings.Contains(err.Error(), "rejected the token") {
		t.Fatalf("wrong token: err = %v", err)
	}
	// The agent token is not a server token.
	asServer := agentToken
	asServer.Username = token.ServerUser
	if _, err := join.RequestCerts(ctx, server, ca, asServer, node); err == nil {
		t.Fatal("the agent token joined as a server")
	}
	secrets := srv.Client.CoreV1().Secrets(nodepassword.Namespace)
	if _, err := secrets.Get(ctx, nodepassword.SecretName(node.Name), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a refused join left a node password: %v", err)
	}

	certs, err := join.RequestCerts(ctx, server, ca, agentToken, node)
	if err != nil {
		t.Fatal(err)
	}
	clientCert := parseCert(t, certs.KubeletClientCert)
	if clientCert.Subject.CommonName != "system:node:edge-1" || len(clientCert.Subject.Organization) != 1 || clientCert.Subject.Organization[0] != "system:nodes" {
		t.Fatalf("kubelet client subject = %v", clientCert.Subject)
	}
	serving := parseCert(t, certs.KubeletServingCert)
	if serving.VerifyHostname("192.0.2.21") != nil || serving.VerifyHostname("edge-1.local") != nil || serving.VerifyHostname("edge-1") != nil {
		t.Fatalf("serving cert names = %v %v", serving.DNSNames, serving.IPAddresses)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certs.ServerCA)
	if _, err := serving.Verify(x509.VerifyOptions{Roots: roots, DNSName: "edge-1"}); err != nil {
		t.Fatalf("serving cert does not chain to the server CA: %v", err)
	}

	// The credentials are the node's identity: it may create its own Node,
	// and NodeRestriction stops it from creating another.
	nodeClient := srv.ClientAs(certs.KubeletClientCert, certs.KubeletClientKey)
	if _, err := nodeClient.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("node cannot register itself: %v", err)
	}
	if _, err := nodeClient.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-2"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("node created another node's object: %v", err)
	}
	if _, err := nodeClient.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("node listed secrets: %v", err)
	}
	proxyClient := srv.ClientAs(certs.KubeProxyCert, certs.KubeProxyKey)
	if _, err := proxyClient.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("kube-proxy credentials cannot list EndpointSlices: %v", err)
	}

	// Another machine with the same name is refused; nothing changes.
	before, err := secrets.Get(ctx, nodepassword.SecretName(node.Name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	thief := node
	thief.Password = "another-machine"
	if _, err := join.RequestCerts(ctx, server, ca, agentToken, thief); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("reused node name: err = %v", err)
	}
	after, _ := secrets.Get(ctx, nodepassword.SecretName(node.Name), metav1.GetOptions{})
	if after.ResourceVersion != before.ResourceVersion {
		t.Fatal("a refused join changed the node password")
	}
	// The same machine rejoins, also with the server token.
	if _, err := join.RequestCerts(ctx, server, ca, serverToken, node); err != nil {
		t.Fatalf("rejoin with the server token: %v", err)
	}

	// The kubernetes Service points at the public port.
	eps, err := srv.Client.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || len(eps.Subsets) != 1 || eps.Subsets[0].Ports[0].Port != int32(c.HTTPSListenPort) {
		t.Fatalf("kubernetes endpoints = %+v, %v", eps, err)
	}
}

func parseCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	certs, err := certutil.ParseCertsPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}
