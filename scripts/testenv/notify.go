package testenv

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Notify is a socket in the role of systemd's NOTIFY_SOCKET: a process
// started with $NOTIFY_SOCKET set to Path reports its state to it (kedge
// sends READY=1 once every component is ready, see shared/sdnotify).
// Waiting for READY=1 waits for an event, not for the wording of a log line.
type Notify struct {
	Path  string
	conn  *net.UnixConn
	ready chan struct{}
	once  sync.Once
}

// ListenNotify listens on a new socket in a short temporary directory (a
// socket path has at most 107 bytes); t.Cleanup closes and removes it.
func ListenNotify(t testing.TB) *Notify {
	t.Helper()
	dir, err := os.MkdirTemp("", "kedge-notify-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	n := &Notify{Path: path, conn: conn, ready: make(chan struct{})}
	done := make(chan struct{})
	go n.read(done)
	t.Cleanup(func() {
		conn.Close()
		<-done
		os.RemoveAll(dir)
	})
	return n
}

// read records the states sent until the socket is closed.
func (n *Notify) read(done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 4096)
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(buf[:k]), "\n") {
			if line == "READY=1" {
				n.once.Do(func() { close(n.ready) })
			}
		}
	}
}

// Ready is closed once READY=1 arrived.
func (n *Notify) Ready() <-chan struct{} { return n.ready }

// IsReady reports whether READY=1 arrived.
func (n *Notify) IsReady() bool { return closed(n.ready) }

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
