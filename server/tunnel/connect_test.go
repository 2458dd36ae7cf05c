package tunnel

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kedge/kedge/scripts/testenv"
)

// The apiserver dials through the egress proxy while it starts, before it
// answers the Node list the proxy's cache needs: the proxy must be ready
// and take a CONNECT then, and complete it once the cache has synced.
func TestEgressServesBeforeTheAPIAnswers(t *testing.T) {
	apiUp := make(chan struct{})
	client := fake.NewClientset()
	client.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-apiUp
		return false, nil, nil
	})
	socket := filepath.Join(t.TempDir(), "egress.sock")
	l, err := ListenEgress(socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Listener: l, Client: client, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r := testenv.Start(t, srv.Egress().Run)
	defer func() {
		if err := r.Stop(); err != nil {
			t.Errorf("tunnel server: %v", err)
		}
	}()
	r.WaitReady(10 * time.Second) // with the Node list still unanswered

	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		c, err := target.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "hello\n")
	}()

	conn, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "CONNECT "+target.Addr().String()+" HTTP/1.1\r\nHost: "+target.Addr().String()+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	close(apiUp)
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("through the proxy: %q, %v", line, err)
	}
}
