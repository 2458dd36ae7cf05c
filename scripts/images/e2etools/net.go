package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// wget supports -q -O FILE (- for stdout) -T SECONDS -S --spider URL.
func wget(args []string) int {
	out, timeout := "", 30*time.Second
	var url string
	quiet, spider, hasPost := false, false, false
	var post string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-O" && i+1 < len(args):
			i++
			out = args[i]
		case strings.HasPrefix(a, "-O"):
			out = a[2:]
		case a == "-T" && i+1 < len(args):
			i++
			s, _ := strconv.Atoi(args[i])
			timeout = time.Duration(s) * time.Second
		case strings.HasPrefix(a, "--timeout="):
			s, _ := strconv.Atoi(strings.TrimPrefix(a, "--timeout="))
			timeout = time.Duration(s) * time.Second
		case a == "-q", a == "-qO-":
			quiet = true
			if a == "-qO-" {
				out = "-"
			}
		case a == "--spider":
			spider = true
		case strings.HasPrefix(a, "--post-data="):
			post, hasPost = strings.TrimPrefix(a, "--post-data="), true
		case strings.HasPrefix(a, "-"):
		default:
			url = a
		}
	}
	_ = quiet
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	var resp *http.Response
	var err error
	if hasPost {
		resp, err = httpClient(timeout, false).Post(url, "application/x-www-form-urlencoded", strings.NewReader(post))
	} else {
		resp, err = httpClient(timeout, false).Get(url)
	}
	if err != nil {
		return fail("wget", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fail("wget", fmt.Errorf("server returned error: HTTP/1.1 %s", resp.Status))
	}
	if spider {
		return 0
	}
	if out == "" {
		out = "index.html"
		if i := strings.LastIndex(strings.TrimRight(url, "/"), "/"); i >= 0 && !strings.HasSuffix(url, "/") && strings.Count(url, "/") > 2 {
			out = url[i+1:]
		}
	}
	return writeBody("wget", resp.Body, out)
}

func writeBody(tool string, body io.Reader, out string) int {
	var w io.Writer = os.Stdout
	if out != "-" && out != "" {
		f, err := os.Create(out)
		if err != nil {
			return fail(tool, err)
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, body); err != nil {
		return fail(tool, err)
	}
	return 0
}

func httpClient(timeout time.Duration, insecure bool) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{InsecureSkipVerify: insecure}}}
}

// curl supports -s -S -f -k -v -o FILE -m/--max-time -X METHOD -d DATA
// -H HEADER -w '%{http_code}' --connect-timeout -I -L.
func curl(args []string) int {
	var url, out, method, data, write string
	var headers []string
	timeout, insecure, failErr, head := 60*time.Second, false, false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case a == "-o" || a == "--output":
			out = next()
		case a == "-m" || a == "--max-time" || a == "--connect-timeout":
			f, _ := strconv.ParseFloat(next(), 64)
			timeout = time.Duration(f * float64(time.Second))
		case a == "-X" || a == "--request":
			method = next()
		case a == "-d" || a == "--data" || a == "--data-binary":
			data = next()
		case a == "-H" || a == "--header":
			headers = append(headers, next())
		case a == "-w" || a == "--write-out":
			write = next()
		case a == "-k" || a == "--insecure":
			insecure = true
		case a == "-I" || a == "--head":
			head = true
		case a == "--retry" || a == "--retry-delay" || a == "--retry-max-time" || a == "--interface" || a == "-u":
			next()
		case strings.HasPrefix(a, "--") || (strings.HasPrefix(a, "-") && len(a) > 1):
			if strings.Contains(a, "f") && !strings.HasPrefix(a, "--") {
				failErr = true
			}
			if strings.Contains(a, "k") && !strings.HasPrefix(a, "--") {
				insecure = true
			}
			if a == "--fail" {
				failErr = true
			}
		default:
			url = a
		}
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	if method == "" {
		method = http.MethodGet
		if data != "" {
			method = http.MethodPost
		}
		if head {
			method = http.MethodHead
		}
	}
	req, err := http.NewRequest(method, url, strings.NewReader(data))
	if err != nil {
		return fail("curl", err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if data != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := httpClient(timeout, insecure).Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "curl: %v\n", err)
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Timeout") {
			return 28
		}
		return 7
	}
	defer resp.Body.Close()
	if failErr && resp.StatusCode >= 400 {
		fmt.Fprintf(os.Stderr, "curl: (22) The requested URL returned error: %d\n", resp.StatusCode)
		return 22
	}
	if head {
		fmt.Printf("%s %s\r\n", resp.Proto, resp.Status)
		resp.Header.Write(os.Stdout)
		fmt.Print("\r\n")
	} else if st := writeBody("curl", resp.Body, out); st != 0 {
		return st
	}
	if write != "" {
		fmt.Print(strings.NewReplacer("%{http_code}", strconv.Itoa(resp.StatusCode), `\n`, "\n").Replace(write))
	}
	return 0
}

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

// resolvConf reads /etc/resolv.conf (nameservers, search list, ndots).
func resolvConf() *dns.ClientConfig {
	cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(cfg.Servers) == 0 {
		return &dns.ClientConfig{Servers: []string{"127.0.0.1"}, Port: "53", Ndots: 1, Timeout: 5, Attempts: 2}
	}
	return cfg
}

// query asks server (or the resolv.conf ones) for name and type, trying
// the search list first when search is set and the name has fewer dots
// than ndots. It returns the first answer with records, or the last reply.
func query(name string, qtype uint16, server string, search, tcp bool) (*dns.Msg, error) {
	cfg := resolvConf()
	servers := cfg.Servers
	if server != "" {
		servers = []string{server}
	}
	names := []string{dns.Fqdn(name)}
	if search && !strings.HasSuffix(name, ".") {
		names = cfg.NameList(name)
	}
	c := &dns.Client{Timeout: time.Duration(cfg.Timeout) * time.Second}
	if tcp {
		c.Net = "tcp"
	}
	var last *dns.Msg
	var lastErr error
	for _, n := range names {
		m := new(dns.Msg)
		m.SetQuestion(n, qtype)
		m.RecursionDesired = true
		for _, s := range servers {
			r, _, err := c.Exchange(m, net.JoinHostPort(s, cfg.Port))
			if err != nil {
				lastErr = err
				continue
			}
			last, lastErr = r, nil
			if r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
				return r, nil
			}
			break
		}
	}
	if last == nil {
		return nil, lastErr
	}
	return last, nil
}

// dig supports NAME [TYPE] [@SERVER] +short +search +tcp +notcp +noall
// +answer (the answer section is what it prints in every mode).
func dig(args []string) int {
	var name, server string
	qtype := dns.TypeA
	short, search, tcp := false, false, false
	for _, a := range args {
		switch {
		case a == "+short":
			short = true
		case a == "+search":
			search = true
		case a == "+tcp", a == "+vc":
			tcp = true
		case strings.HasPrefix(a, "+"):
		case strings.HasPrefix(a, "@"):
			server = a[1:]
		case dns.StringToType[strings.ToUpper(a)] != 0 && name != "":
			qtype = dns.StringToType[strings.ToUpper(a)]
		case a == "-x":
			qtype = dns.TypePTR
		default:
			if qtype == dns.TypePTR && name == "" && net.ParseIP(a) != nil {
				a, _ = dns.ReverseAddr(a)
			}
			name = a
		}
	}
	if name == "" {
		name = "."
		qtype = dns.TypeNS
	}
	r, err := query(name, qtype, server, search, tcp)
	if err != nil {
		fmt.Printf(";; communications error: %v\n", err)
		return 9
	}
	for _, rr := range r.Answer {
		if short {
			h := rr.Header().String()
			fmt.Println(strings.TrimPrefix(rr.String(), h))
		} else {
			fmt.Println(rr.String())
		}
	}
	return 0
}

// lookupHost resolves name with /etc/hosts first, then the cluster DNS
// (A and AAAA, with the search list).
func lookupHost(name string) ([]string, error) {
	if b, err := os.ReadFile("/etc/hosts"); err == nil {
		var addrs []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(strings.SplitN(line, "#", 2)[0])
			for _, h := range f[min(1, len(f)):] {
				if h == name {
					addrs = append(addrs, f[0])
				}
			}
		}
		if len(addrs) > 0 {
			return addrs, nil
		}
	}
	if ip := net.ParseIP(name); ip != nil {
		return []string{name}, nil
	}
	var addrs []string
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r, err := query(name, t, "", true, false)
		if err != nil {
			continue
		}
		for _, rr := range r.Answer {
			switch v := rr.(type) {
			case *dns.A:
				addrs = append(addrs, v.A.String())
			case *dns.AAAA:
				addrs = append(addrs, v.AAAA.String())
			}
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s: no address", name)
	}
	return addrs, nil
}

// getent hosts NAME prints "ADDRESS NAME" lines (exit 2 when unknown).
func getent(args []string) int {
	if len(args) != 2 || (args[0] != "hosts" && args[0] != "ahosts") {
		return fail("getent", fmt.Errorf("only: getent hosts NAME"))
	}
	addrs, err := lookupHost(args[1])
	if err != nil {
		return 2
	}
	for _, a := range addrs {
		fmt.Printf("%-15s %s\n", a, args[1])
	}
	return 0
}

// nslookup NAME [SERVER] prints busybox's format.
func nslookup(args []string) int {
	_, rest := flags(args, "")
	if len(rest) == 0 {
		return fail("nslookup", fmt.Errorf("want NAME [SERVER]"))
	}
	server := ""
	if len(rest) > 1 {
		server = rest[1]
	}
	cfg := resolvConf()
	shown := server
	if shown == "" {
		shown = cfg.Servers[0]
	}
	fmt.Printf("Server:\t\t%s\nAddress:\t%s:%s\n\n", shown, shown, cfg.Port)
	found := false
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r, err := query(rest[0], t, server, true, false)
		if err != nil {
			return fail("nslookup", err)
		}
		for _, rr := range r.Answer {
			switch v := rr.(type) {
			case *dns.A:
				fmt.Printf("Name:\t%s\nAddress: %s\n\n", strings.TrimSuffix(v.Hdr.Name, "."), v.A)
				found = true
			case *dns.AAAA:
				fmt.Printf("Name:\t%s\nAddress: %s\n\n", strings.TrimSuffix(v.Hdr.Name, "."), v.AAAA)
				found = true
			}
		}
	}
	if !found {
		fmt.Fprintf(os.Stderr, "** server can't find %s: NXDOMAIN\n", rest[0])
		return 1
	}
	return 0
}

// nginx is the nginx image's stand-in: it serves /usr/share/nginx/html on
// port 80 (index.html for directories) until SIGTERM/SIGQUIT, logging
// requests to stdout. Its flags (-g 'daemon off;') are accepted and ignored.
func nginx([]string) int {
	srv := &http.Server{Addr: ":80", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("%s - - [%s] \"%s %s %s\"\n", r.RemoteAddr, time.Now().Format("02/Jan/2006:15:04:05 -0700"), r.Method, r.URL.Path, r.Proto)
		w.Header().Set("Server", "nginx")
		http.FileServer(http.Dir("/usr/share/nginx/html")).ServeHTTP(w, r)
	})}
	go func() {
		waitSignal()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		return fail("nginx", err)
	}
	return 0
}
