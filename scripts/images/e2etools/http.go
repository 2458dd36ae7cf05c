package main

// HTTP clients and server: wget, curl, nginx.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
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
