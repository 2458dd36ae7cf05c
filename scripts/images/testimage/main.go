// Command testimage is the small HTTP server kedge's tests run in pods, and
// the example of bringing your own image without a registry.
//
//	GET /          "hello from <hostname>\n"
//	GET /healthz   "ok"
//	GET /peer      the client's IP address as the server sees it
//	GET /env?k=K   the value of environment variable K
//	GET /file?p=P  the contents of file P (for volume tests)
//	PUT /file?p=P  writes the request body to file P
//	POST /exit     exits with status 1 (for restart tests)
//
// It listens on $PORT (default 8080). `testimage get URL` instead prints the
// body of URL and exits (non-zero on failure): tests run it with kubectl exec
// to reach other pods and Services from inside a pod. `testimage resolve
// NAME` prints NAME's addresses, one per line, as the pod's resolver (its
// /etc/resolv.conf, so the cluster DNS) answers them (non-zero on failure).
// `testimage chatter` prints a numbered line every 10 ms, forever (a pod
// that writes logs all the time, for soak tests).
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "get" {
		os.Exit(get(os.Args[2]))
	}
	if len(os.Args) == 3 && os.Args[1] == "resolve" {
		os.Exit(resolve(os.Args[2]))
	}
	if len(os.Args) == 2 && os.Args[1] == "chatter" {
		chatter()
	}
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /peer", func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprint(w, ip)
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("k")))
	})
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("p"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("PUT /file", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = os.WriteFile(r.URL.Query().Get("p"), b, 0o644)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("POST /exit", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "bye")
		go func() { time.Sleep(100 * time.Millisecond); os.Exit(1) }()
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("testimage listening on :%s", port)
	log.Fatal(srv.ListenAndServe())
}

// get prints the body of url and returns the exit code.
func get(url string) int {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "status", resp.Status, err)
		return 1
	}
	return 0
}

// resolve prints the addresses of name, sorted, and returns the exit code.
func resolve(name string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		fmt.Println(a)
	}
	return 0
}

// chatter prints a numbered, timestamped line every 10 ms and never returns.
func chatter() {
	for i := 0; ; i++ {
		fmt.Printf("line %d at %s: the quick brown fox jumps over the lazy dog\n", i, time.Now().Format(time.RFC3339Nano))
		time.Sleep(10 * time.Millisecond) // the pace of the chatter
	}
}
