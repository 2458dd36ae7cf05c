package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tools builds e2etools once and returns a PATH directory with one
// symlink per applet, as the images have in /bin.
func tools(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "e2etools")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, n := range Names() {
		if err := os.Symlink("e2etools", filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Scripts of the shape the conformance specs run in busybox and agnhost
// containers give the output and exit status busybox would.
func TestShellScriptsAsTheSpecsRunThem(t *testing.T) {
	dir := tools(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodPost {
			r.ParseForm()
			fmt.Fprint(w, "posted x="+r.PostForm.Get("x"))
			return
		}
		fmt.Fprint(w, "hostname: pod-1")
	}))
	defer web.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("echo-server\n"))
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	work := t.TempDir()
	cases := []struct {
		script, want string
		status       int
	}{
		{`for i in $(seq 1 3); do check="$(echo hi $i)" && test -n "$check" && echo OK$i > ` + work + `/r$i; done; cat ` + work + `/r2`, "OK2\n", 0},
		{`mkdir -p ` + work + `/a/b && touch ` + work + `/a/b/f && chmod 0640 ` + work + `/a/b/f && stat -c '%a %F' ` + work + `/a/b/f`, "640 regular empty file\n", 0},
		{`echo content > ` + work + `/c && ls ` + work + ` | grep -c '^c$'`, "1\n", 0},
		{`wget -q -O - ` + web.URL + `/`, "hostname: pod-1", 0},
		{`wget -q -O - ` + web.URL + `/missing`, "", 1},
		{`curl -s -o /dev/null -w '%{http_code}' ` + web.URL + `/missing`, "404", 0},
		{`curl -sf ` + web.URL + `/missing`, "", 22},
		{`nc 127.0.0.1 ` + port + ` </dev/null`, "echo-server\n", 0},
		{`nc -z -w 1 127.0.0.1 ` + port + ` && echo open`, "open\n", 0},
		{`printf 'b\na\nb\n' | sort -u | head -n 1`, "a\n", 0},
		{`echo a:b:c | cut -d : -f 2`, "b\n", 0},
		{`[ -d / ] && [ ! -e /nonexistent ] && echo yes`, "yes\n", 0},
		{`timeout 1 sleep 5`, "", 124},
		{`timeout 1 sleep infinity`, "", 124},
		{`sh -c 'exit 7'`, "", 7},
		{`env FOO=bar sh -c 'echo $FOO'`, "bar\n", 0},
		{`grep -q nothing ` + work + `/c`, "", 1},
		{`if [ $(expr 3 % 2) -ne 0 ]; then exit 1; else exit 0; fi`, "", 1},
		{`f=` + work + `/count; count=$(echo 'hello' >> $f ; wc -l $f | awk {'print $1'}); echo $count; wc -l $f`, "1\n1 " + work + "/count\n", 0},
		{`echo a:b:c | awk -F : '{print $3, $1}'`, "c a\n", 0},
		{`wget -q -O- --post-data=x=1 ` + web.URL + `/`, "posted x=1", 0},
		{`printf '\336\312' > ` + work + `/bin; hexdump -C ` + work + `/bin | head -n 1 | cut -c1-15`, "00000000  de ca\n", 0},
		{`echo test > /nonexistent-dir/file`, "", 1},
		{`expr 4 + 5; expr 2 = 3`, "9\n0\n", 1},
		{`echo $(basename /a/b/c.txt .txt) $(dirname /a/b/c.txt)`, "c /a/b\n", 0},
	}
	for _, c := range cases {
		cmd := exec.Command(filepath.Join(dir, "sh"), "-c", c.script)
		cmd.Env = []string{"PATH=" + dir}
		out, err := cmd.Output()
		status := 0
		if ee, ok := err.(*exec.ExitError); ok {
			status = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", c.script, err)
		}
		if string(out) != c.want || status != c.status {
			t.Errorf("%s\n  = %q, status %d; want %q, status %d", c.script, out, status, c.want, c.status)
		}
	}
}

// An unknown applet is one clear error with status 127, as a shell's
// "command not found".
func TestUnknownApplet(t *testing.T) {
	dir := tools(t)
	out, err := exec.Command(filepath.Join(dir, "e2etools"), "no-such-tool").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 || !strings.Contains(string(out), "no-such-tool: applet not found") {
		t.Fatalf("got %v: %s", err, out)
	}
}

// A failed redirection is worded as busybox sh words it (a spec compares
// the whole line).
func TestRedirectionErrorAsBusybox(t *testing.T) {
	dir := tools(t)
	cmd := exec.Command(filepath.Join(dir, "sh"), "-c", "echo test > /nonexistent-dir/file")
	out, _ := cmd.CombinedOutput()
	if want := "/bin/sh: can't create /nonexistent-dir/file: No such file or directory\n"; string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}
