package checkconfig

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	agentconfig "github.com/kedge/kedge/agent/config"
	agentkubelet "github.com/kedge/kedge/agent/node/kubelet"
)

// port is a port kedge listens on, at its default.
type port struct {
	number   int
	network  string // tcp or udp
	host     string // address kedge binds
	usedBy   string
	flag     string // flag that moves it, if any
	required bool
}

// The server's defaults live in server/config, which agent code may not
// import: DefaultHTTPSPort 6443, DefaultAPIServerPort 6444,
// DefaultEtcdClientPort 2379, DefaultEtcdPeerPort 2380. The rest are the
// agent's, clusterdns.Port (10053), tunnel.DefaultKubeletPort (10250),
// proxy's metrics 10249 and healthz 10256, and flannel.VXLANPort (8472).
var ports = []port{
	{6443, "tcp", "0.0.0.0", "the server's Kubernetes and join API", "--https-listen-port", true},
	{agentconfig.DefaultLBPort, "tcp", "127.0.0.1", "the server's kube-apiserver, or the agent's load balancer", "--apiserver-port or --lb-port", true},
	{agentconfig.DefaultAPICachePort, "tcp", "127.0.0.1", "the local caching API endpoint", "--api-cache-port", true},
	{10250, "tcp", "0.0.0.0", "the kubelet", "", true},
	{agentkubelet.HealthzPort, "tcp", "127.0.0.1", "the kubelet's healthz", "", true},
	{10249, "tcp", "127.0.0.1", "kube-proxy's metrics", "", true},
	{10256, "tcp", "127.0.0.1", "kube-proxy's healthz", "", true},
	{10053, "udp", "0.0.0.0", "the cluster DNS", "", true},
	{10053, "tcp", "0.0.0.0", "the cluster DNS", "", true},
	{8472, "udp", "0.0.0.0", "flannel's vxlan", "", true},
	{2379, "tcp", "127.0.0.1", "embedded etcd's clients, with --cluster-init", "--etcd-client-port", false},
	{2380, "tcp", "0.0.0.0", "embedded etcd's peers, with --cluster-init", "--etcd-peer-port", false},
}

func networkResults(sys System, k *kernel) []Result {
	out := []Result{defaultRoute(sys, k)}
	for _, p := range ports {
		out = append(out, checkPort(sys, p))
	}
	return out
}

// routeWhy says why kedge needs a default route.
const routeWhy = "kedge needs a default route, an air-gapped device too: the node IP is picked from it, " +
	"and the host's connections to Service IPs need a route before kube-proxy's NAT applies"

// DummyRouteHint is how to give a machine without a network a default
// route kedge can use.
const DummyRouteHint = routeWhy + "; add one on a dummy interface: " +
	"ip link add dummy0 type dummy; ip addr add 203.0.113.1/32 dev dummy0; ip link set dummy0 up; ip route add default dev dummy0 metric 1000"

func defaultRoute(sys System, k *kernel) Result {
	r := Result{Group: GroupNetwork, Name: "default route"}
	if dev := defaultRouteDevice(sys); dev != "" {
		r.Status, r.Detail = OK, "via "+dev
		return r
	}
	r.Status, r.Detail, r.Hint = Missing, "none (IPv4 or IPv6)", DummyRouteHint
	if st, _ := k.needState(n("DUMMY", "dummy")); st == stMissing || st == stNoModules {
		r.Hint = routeWhy + "; this kernel has no dummy interface (CONFIG_DUMMY), " +
			"so add one on an interface that is up: ip route add default dev eth0 metric 1000"
	}
	return r
}

// defaultRouteDevice returns the interface of a usable default route from
// /proc/net/route or /proc/net/ipv6_route, or "".
func defaultRouteDevice(sys System) string {
	const rtfUp, rtfReject = 0x1, 0x200
	for _, line := range lines(sys.proc("net", "route")) {
		f := strings.Fields(line)
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		if flags, err := strconv.ParseUint(f[3], 16, 32); err == nil && flags&rtfUp != 0 {
			return f[0]
		}
	}
	for _, line := range lines(sys.proc("net", "ipv6_route")) {
		f := strings.Fields(line)
		if len(f) < 10 || f[0] != strings.Repeat("0", 32) || f[1] != "00" || f[9] == "lo" {
			continue
		}
		if flags, err := strconv.ParseUint(f[8], 16, 32); err == nil && flags&rtfUp != 0 && flags&rtfReject == 0 {
			return f[9]
		}
	}
	return ""
}

func checkPort(sys System, p port) Result {
	r := Result{Group: GroupNetwork, Name: fmt.Sprintf("port %d/%s", p.number, p.network), Status: OK, Detail: "free, for " + p.usedBy}
	err := sys.Bind(p.network, net.JoinHostPort(p.host, strconv.Itoa(p.number)))
	if err == nil {
		return r
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		r.Status, r.Detail = Warn, fmt.Sprintf("could not test it, for %s: %v", p.usedBy, err)
		r.Hint = "see that nothing else listens there"
		return r
	}
	owner, byKedge := portOwner(sys, p)
	if byKedge {
		r.Detail = "in use by " + owner + ", running already"
		return r
	}
	r.Status = Warn
	if p.required {
		r.Status = Missing
	}
	r.Detail = "in use by " + owner + "; " + p.usedBy + " needs it"
	r.Hint = "stop what listens there"
	if p.flag != "" {
		r.Hint += ", or move kedge's with " + p.flag
	}
	return r
}

// portOwner names what holds p: a process from /proc/net/{tcp,udp}{,6}
// and the processes' socket fds, or the kernel (inode 0: a vxlan device's
// socket). byKedge is true for a kedge process or kedge's flannel.1.
func portOwner(sys System, p port) (owner string, byKedge bool) {
	inodes := map[string]bool{}
	for _, file := range []string{p.network, p.network + "6"} {
		for _, line := range lines(sys.proc("net", file)) {
			f := strings.Fields(line)
			if len(f) < 10 || (p.network == "tcp" && f[3] != "0A") { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if n, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(n) == p.number {
				inodes[f[9]] = true
			}
		}
	}
	if inodes["0"] {
		if exists(sys.sys("class", "net", "flannel.1")) {
			return "flannel.1, kedge's vxlan device", true
		}
		return "the kernel (a vxlan or other in-kernel socket)", false
	}
	if len(inodes) == 0 {
		return "another process", false
	}
	pids, _ := filepath.Glob(sys.proc("[0-9]*", "fd"))
	for _, fdDir := range pids {
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(target, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] {
				pidDir := filepath.Dir(fdDir)
				comm := readString(filepath.Join(pidDir, "comm"))
				return fmt.Sprintf("%s (pid %s)", comm, filepath.Base(pidDir)), comm == "kedge"
			}
		}
	}
	return "another process", false
}

func lines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// bind listens on address and closes the listener at once.
func bind(network, address string) error {
	if network == "udp" {
		c, err := net.ListenPacket("udp", address)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen("tcp", address)
	if err != nil {
		return err
	}
	return l.Close()
}
