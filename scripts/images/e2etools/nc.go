package main

// nc: TCP and UDP connections and listeners.

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

// nc supports client mode (nc [-u] [-z] [-w SECS] [-v] HOST PORT, stdin to
// the peer, the peer to stdout) and -l [-p] PORT [-e CMD] / -lk listening.
func nc(args []string) int {
	opts, rest := flags(args, "wpeiq")
	network := "tcp"
	if has(opts, 'u') {
		network = "udp"
	}
	wait := 0 * time.Second
	if w, ok := opts['w']; ok {
		s, _ := strconv.Atoi(w)
		wait = time.Duration(s) * time.Second
	}
	if has(opts, 'l') {
		port := opts['p']
		if port == "" && len(rest) > 0 {
			port = rest[len(rest)-1]
		}
		if network == "udp" {
			pc, err := net.ListenPacket("udp", ":"+port)
			if err != nil {
				return fail("nc", err)
			}
			buf := make([]byte, 65536)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return fail("nc", err)
				}
				os.Stdout.Write(buf[:n])
			}
		}
		l, err := net.Listen("tcp", ":"+port)
		if err != nil {
			return fail("nc", err)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				return fail("nc", err)
			}
			if cmd, ok := opts['e']; ok {
				go serveCmd(c, cmd)
			} else {
				pipe(c, 0)
			}
			if !has(opts, 'k') {
				return 0
			}
		}
	}
	if len(rest) < 2 {
		return fail("nc", fmt.Errorf("want HOST PORT"))
	}
	d := net.Dialer{Timeout: wait}
	if wait == 0 {
		d.Timeout = 30 * time.Second
	}
	c, err := d.Dial(network, net.JoinHostPort(rest[0], rest[1]))
	if err != nil {
		if has(opts, 'v') {
			fmt.Fprintf(os.Stderr, "nc: %s (%s:%s): %v\n", rest[0], rest[0], rest[1], err)
		}
		return 1
	}
	if has(opts, 'v') {
		fmt.Fprintf(os.Stderr, "%s (%s:%s) open\n", rest[0], rest[0], rest[1])
	}
	if has(opts, 'z') {
		c.Close()
		return 0
	}
	pipe(c, wait)
	return 0
}

// pipe copies stdin to c and c to stdout until c closes (or, after stdin
// ends, wait passes without data when wait > 0).
func pipe(c net.Conn, wait time.Duration) {
	defer c.Close()
	go func() {
		io.Copy(c, os.Stdin)
		if tc, ok := c.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
		}
	}()
	if wait > 0 {
		c.SetReadDeadline(time.Now().Add(wait))
	}
	io.Copy(os.Stdout, c)
}

func serveCmd(c net.Conn, cmd string) {
	defer c.Close()
	p, err := os.StartProcess(self(), []string{"sh", "-c", cmd}, &os.ProcAttr{Files: []*os.File{connFile(c), connFile(c), os.Stderr}})
	if err == nil {
		p.Wait()
	}
}

func connFile(c net.Conn) *os.File {
	if tc, ok := c.(*net.TCPConn); ok {
		if f, err := tc.File(); err == nil {
			return f
		}
	}
	return nil
}
