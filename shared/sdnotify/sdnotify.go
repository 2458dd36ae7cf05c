// Package sdnotify tells systemd (Type=notify units) when kedge is ready.
//
// The embedded kube-apiserver notifies systemd as soon as it listens, before
// it can serve; kedge therefore takes NOTIFY_SOCKET out of the environment
// at start and notifies itself once every component is ready.
package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// Notifier sends state changes to the systemd socket it was created with.
// The zero value (not under systemd) does nothing.
type Notifier struct{ socket string }

// Take returns a Notifier for $NOTIFY_SOCKET and unsets the variable so that
// nothing else in the process notifies. Call it once, before components start.
func Take() Notifier {
	n := Notifier{socket: os.Getenv("NOTIFY_SOCKET")}
	os.Unsetenv("NOTIFY_SOCKET")
	return n
}

// Ready sends READY=1.
func (n Notifier) Ready() error { return n.send("READY=1") }

// Stopping sends STOPPING=1.
func (n Notifier) Stopping() error { return n.send("STOPPING=1") }

func (n Notifier) send(state string) error {
	if n.socket == "" {
		return nil
	}
	addr := &net.UnixAddr{Name: n.socket, Net: "unixgram"}
	if addr.Name[0] == '@' {
		addr.Name = "\x00" + addr.Name[1:] // abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	return nil
}
