// Command e2etools is the stand-in for the distribution tools that the
// upstream Kubernetes e2e images (busybox, agnhost's alpine base, the
// glibc DNS querier, nginx) carry: one static multi-call binary that
// dispatches on the name it is run as (argv[0], a symlink in the image's
// /bin), or on its first argument (`e2etools cat /etc/hosts`).
//
// sh/bash/ash is mvdan.cc/sh's POSIX/bash interpreter; the other applets
// implement the options the conformance specs use (see `e2etools --list`),
// with busybox's output formats where the specs read them.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// applet runs one tool with its arguments (without the tool's name) and
// returns the exit status.
type applet func(args []string) int

var applets map[string]applet

func init() {
	applets = map[string]applet{
		"sh": runShell, "bash": runShell, "ash": runShell,
		"true": func([]string) int { return 0 }, "false": func([]string) int { return 1 },
		"echo": echo, "printf": printfCmd, "test": testCmd, "[": testCmd,
		"cat": cat, "ls": ls, "sleep": sleep, "mkdir": mkdir, "touch": touch, "rm": rm,
		"cp": cp, "mv": mv, "ln": ln, "chmod": chmod, "chown": chown, "stat": stat,
		"readlink": readlink, "dd": dd, "df": df, "find": find, "mount": mount,
		"id": id, "whoami": whoami, "hostname": hostname, "env": env, "uname": uname,
		"date": date, "grep": grep, "head": head, "tail": tail, "wc": wc, "sort": sortCmd,
		"seq": seq, "tee": tee, "cut": cut, "tr": tr, "basename": basename, "dirname": dirname,
		"md5sum": md5sum, "yes": yes, "expr": expr, "awk": awk, "hexdump": hexdump, "ip": ip, "sync": func([]string) int { return 0 },
		"timeout": timeout, "kill": kill, "ps": ps, "pidof": pidof, "nproc": nproc, "sysctl": sysctl,
		"wget": wget, "curl": curl, "nc": nc, "nslookup": nslookup, "dig": dig, "getent": getent,
		"nginx": nginx,
	}
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if _, ok := applets[name]; !ok && len(args) > 0 {
		if args[0] == "--list" {
			fmt.Println(strings.Join(Names(), " "))
			return
		}
		name, args = args[0], args[1:]
	}
	a, ok := applets[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "e2etools: %s: applet not found\n", name)
		os.Exit(127)
	}
	os.Exit(a(args))
}

// Names lists the applets, sorted.
func Names() []string {
	var n []string
	for k := range applets {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// fail prints "tool: err" on stderr and returns status 1.
func fail(tool string, err error) int {
	fmt.Fprintf(os.Stderr, "%s: %v\n", tool, err)
	return 1
}

// flags splits args into single-letter options (-abc, -n 5 when the letter
// is in withValue) and operands; "--" ends options.
func flags(args []string, withValue string) (map[byte]string, []string) {
	opts := map[byte]string{}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' || (a[1] >= '0' && a[1] <= '9') {
			rest = append(rest, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if strings.IndexByte(withValue, c) >= 0 {
				v := a[j+1:]
				if v == "" && i+1 < len(args) {
					i++
					v = args[i]
				}
				opts[c] = v
				break
			}
			opts[c] = ""
		}
	}
	return opts, rest
}

func has(opts map[byte]string, c byte) bool { _, ok := opts[c]; return ok }

// self is the path of this binary, for running another applet.
func self() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "/bin/e2etools"
}
