package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lookupID finds id in /etc/passwd or /etc/group (field 2), or "" .
func lookupID(file string, id int) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) > 2 && p[2] == strconv.Itoa(id) {
			return p[0]
		}
	}
	return ""
}

func userName(uid int) string {
	if n := lookupID("/etc/passwd", uid); n != "" {
		return n
	}
	return strconv.Itoa(uid)
}

func groupName(gid int) string {
	if n := lookupID("/etc/group", gid); n != "" {
		return n
	}
	return strconv.Itoa(gid)
}

// id prints busybox's format: uid=0(root) gid=0(root) groups=0(root),...
func id(args []string) int {
	opts, _ := flags(args, "")
	uid, gid := os.Getuid(), os.Getgid()
	groups, _ := os.Getgroups()
	name := func(n string, id int) string {
		if has(opts, 'n') {
			return n
		}
		return strconv.Itoa(id)
	}
	switch {
	case has(opts, 'u'):
		fmt.Println(name(userName(uid), uid))
	case has(opts, 'g') && !has(opts, 'G'):
		fmt.Println(name(groupName(gid), gid))
	case has(opts, 'G'):
		var s []string
		for _, g := range append([]int{gid}, groups...) {
			s = append(s, name(groupName(g), g))
		}
		fmt.Println(strings.Join(s, " "))
	default:
		out := fmt.Sprintf("uid=%d%s gid=%d%s", uid, paren(uid, "/etc/passwd"), gid, paren(gid, "/etc/group"))
		if len(groups) == 0 {
			groups = []int{gid}
		}
		{
			var s []string
			for _, g := range groups {
				s = append(s, strconv.Itoa(g)+paren(g, "/etc/group"))
			}
			out += " groups=" + strings.Join(s, ",")
		}
		fmt.Println(out)
	}
	return 0
}

func paren(id int, file string) string {
	if n := lookupID(file, id); n != "" {
		return "(" + n + ")"
	}
	return ""
}

func whoami([]string) int { fmt.Println(userName(os.Getuid())); return 0 }

func hostname(args []string) int {
	opts, _ := flags(args, "")
	h, err := os.Hostname()
	if err != nil {
		return fail("hostname", err)
	}
	if has(opts, 'i') {
		addrs, err := lookupHost(h)
		if err != nil {
			return fail("hostname", err)
		}
		fmt.Println(strings.Join(addrs, " "))
		return 0
	}
	fmt.Println(h)
	return 0
}

func uname(args []string) int {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return fail("uname", err)
	}
	str := func(b [65]int8) string {
		var s []byte
		for _, c := range b {
			if c == 0 {
				break
			}
			s = append(s, byte(c))
		}
		return string(s)
	}
	opts, _ := flags(args, "")
	switch {
	case has(opts, 'a'):
		fmt.Println(str(u.Sysname), str(u.Nodename), str(u.Release), str(u.Version), str(u.Machine), "GNU/Linux")
	case has(opts, 'r'):
		fmt.Println(str(u.Release))
	case has(opts, 'm'):
		fmt.Println(str(u.Machine))
	case has(opts, 'n'):
		fmt.Println(str(u.Nodename))
	default:
		fmt.Println(str(u.Sysname))
	}
	return 0
}

// timeout [-s SIG] SECONDS CMD...: exit 124 when the time passes.
func timeout(args []string) int {
	opts, rest := flags(args, "sk")
	_ = opts
	if len(rest) < 2 {
		return fail("timeout", fmt.Errorf("want SECONDS COMMAND"))
	}
	secs, err := strconv.ParseFloat(strings.TrimSuffix(rest[0], "s"), 64)
	if err != nil {
		return fail("timeout", err)
	}
	cmd := &exec.Cmd{Path: self(), Args: append([]string{"e2etools"}, rest[1:]...)}
	if p, err := exec.LookPath(rest[1]); err == nil {
		cmd.Path, cmd.Args = p, rest[1:]
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fail("timeout", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(err)
	case <-time.After(time.Duration(secs * float64(time.Second))):
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
		return 124
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 127
}

var signals = map[string]syscall.Signal{"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL,
	"TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "QUIT": syscall.SIGQUIT, "STOP": syscall.SIGSTOP, "CONT": syscall.SIGCONT}

func kill(args []string) int {
	sig := syscall.SIGTERM
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		s := strings.TrimPrefix(strings.TrimPrefix(args[0], "-"), "s")
		if args[0] == "-s" && len(args) > 1 {
			args = args[1:]
			s = args[0]
		}
		if n, err := strconv.Atoi(s); err == nil {
			sig = syscall.Signal(n)
		} else if v, ok := signals[strings.TrimPrefix(strings.ToUpper(s), "SIG")]; ok {
			sig = v
		}
		args = args[1:]
	}
	st := 0
	for _, a := range args {
		pid, err := strconv.Atoi(a)
		if err == nil {
			err = syscall.Kill(pid, sig)
		}
		if err != nil {
			st = fail("kill", err)
		}
	}
	return st
}

// procs lists (pid, command name, command line) of every process.
func procs() [][3]string {
	var out [][3]string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, [3]string{e.Name(), strings.TrimSpace(string(comm)), strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))})
	}
	return out
}

func ps([]string) int {
	fmt.Println("PID   USER     TIME  COMMAND")
	for _, p := range procs() {
		fmt.Printf("%5s root      0:00 %s\n", p[0], p[2])
	}
	return 0
}

func pidof(args []string) int {
	var pids []string
	for _, p := range procs() {
		for _, a := range args {
			first, _, _ := strings.Cut(p[2], " ")
			if p[1] == a || filepath.Base(first) == a {
				pids = append(pids, p[0])
			}
		}
	}
	if len(pids) == 0 {
		return 1
	}
	fmt.Println(strings.Join(pids, " "))
	return 0
}

func nproc([]string) int { fmt.Println(runtime.NumCPU()); return 0 }

// sysctl prints (NAME or -a) or writes (-w NAME=VALUE) /proc/sys values.
func sysctl(args []string) int {
	opts, rest := flags(args, "")
	st := 0
	for _, a := range rest {
		k, v, set := strings.Cut(a, "=")
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if set || has(opts, 'w') {
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				st = fail("sysctl", err)
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			st = fail("sysctl", err)
			continue
		}
		if has(opts, 'n') {
			fmt.Println(strings.TrimSpace(string(b)))
		} else {
			fmt.Printf("%s = %s\n", k, strings.TrimSpace(string(b)))
		}
	}
	return st
}

// waitSignal blocks until SIGTERM or SIGINT.
func waitSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}

func sleep(args []string) int {
	var total time.Duration
	for _, a := range args {
		if a == "infinity" || a == "inf" {
			for { // a bare select{} would be a deadlock to the runtime
				time.Sleep(time.Hour)
			}
		}
		unit := time.Second
		switch {
		case strings.HasSuffix(a, "m"):
			unit, a = time.Minute, strings.TrimSuffix(a, "m")
		case strings.HasSuffix(a, "h"):
			unit, a = time.Hour, strings.TrimSuffix(a, "h")
		case strings.HasSuffix(a, "d"):
			unit, a = 24*time.Hour, strings.TrimSuffix(a, "d")
		case strings.HasSuffix(a, "s"):
			a = strings.TrimSuffix(a, "s")
		}
		f, err := strconv.ParseFloat(a, 64)
		if err != nil {
			return fail("sleep", fmt.Errorf("invalid number %q", a))
		}
		total += time.Duration(f * float64(unit))
	}
	time.Sleep(total)
	return 0
}
