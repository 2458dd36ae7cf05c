// Package resolvconf reads the nameservers of a resolv.conf and picks the
// file the node's pods get.
package resolvconf

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"strings"
)

// Default is the host's resolver configuration.
const Default = "/etc/resolv.conf"

// SystemdResolved is the file systemd-resolved writes with the real
// upstream servers (its /etc/resolv.conf names only its 127.0.0.53 stub).
const SystemdResolved = "/run/systemd/resolve/resolv.conf"

// Nameservers returns the nameserver addresses of a resolv.conf, in order,
// IPv6 ones with their %zone if they have one; entries that are not IP
// addresses are skipped.
func Nameservers(content []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(content))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		host, _, _ := strings.Cut(f[1], "%")
		if net.ParseIP(host) != nil {
			out = append(out, f[1])
		}
	}
	return out
}

// LoopbackOnly reports whether content names nameservers and all of them
// are loopback addresses, which a pod's network namespace cannot reach.
func LoopbackOnly(content []byte) bool {
	ns := Nameservers(content)
	for _, n := range ns {
		host, _, _ := strings.Cut(n, "%")
		if !net.ParseIP(host).IsLoopback() {
			return false
		}
	}
	return len(ns) > 0
}

// ForPods returns the resolv.conf the kubelet should give pods (their
// search domains, and the nameservers of dnsPolicy Default pods): path,
// unless the user did not choose it (chosen false) and it names only
// loopback resolvers while systemd-resolved's own file exists; then that.
func ForPods(path string, content []byte, chosen bool) string {
	if chosen || !LoopbackOnly(content) {
		return path
	}
	if _, err := os.Stat(SystemdResolved); err == nil {
		return SystemdResolved
	}
	return path
}
