package main

// Name lookups: dig, nslookup, getent.

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

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
