package hosts

import (
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/kedge/kedge/scripts/testenv"
)

// Proc is a process running in a host.
type Proc struct {
	Cmd    *exec.Cmd
	out    *testenv.Output
	exited chan error
	notify *testenv.Notify // nil for a host's init process
}

// Ready reports whether the process sent READY=1 to its $NOTIFY_SOCKET
// (kedge does once every component is ready).
func (p *Proc) Ready() bool { return p.notify != nil && p.notify.IsReady() }

// Output is everything the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// Exited returns the exit error if the process ended, and whether it did.
func (p *Proc) Exited() (error, bool) {
	select {
	case err := <-p.exited:
		p.exited <- err
		return err, true
	default:
		return nil, false
	}
}

// Stop sends SIGTERM and waits up to timeout; it returns the exit error.
func (p *Proc) Stop(timeout time.Duration) error {
	if err, done := p.Exited(); done {
		return err
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-time.After(timeout):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		err := <-p.exited
		p.exited <- err
		return fmt.Errorf("not stopped within %s of SIGTERM", timeout)
	}
}
