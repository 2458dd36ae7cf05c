package checkconfig

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// feature is a kernel feature kedge uses.
type feature struct {
	name     string
	required bool
	// needs must all be there.
	needs []need
	// present, if set, is evidence from the running kernel that the
	// feature is there, whatever the config says.
	present func(k *kernel) bool
	// explicitLoad: the kernel does not load the module on first use;
	// something has to modprobe it.
	explicitLoad bool
	// usedBy says what needs it, for the hint.
	usedBy string
}

// need is one part of a feature: any of options (kernel config names
// without CONFIG_), provided as a module by any of modules.
type need struct {
	options []string
	modules []string
}

func n(options, modules string) need {
	return need{options: strings.Fields(options), modules: strings.Fields(modules)}
}

// kedgeMinKernel is the oldest kernel kube-proxy's nftables mode (kedge's
// default) supports.
var kedgeMinKernel = [2]int{5, 13}

var features = []feature{
	{name: "overlay", required: true, needs: []need{n("OVERLAY_FS", "overlay")},
		present: func(k *kernel) bool { return hasFilesystem(k.sys, "overlay") },
		usedBy:  "containerd's overlayfs snapshotter"},
	{name: "bridge", required: true, needs: []need{n("BRIDGE", "bridge")},
		present: func(k *kernel) bool { return k.moduleLoaded("bridge") },
		usedBy:  "the pods' bridge network (CNI bridge plugin)"},
	{name: "br_netfilter", required: true, needs: []need{n("BRIDGE_NETFILTER", "br_netfilter")},
		present:      func(k *kernel) bool { return exists(k.sys.proc("sys", "net", "bridge", "bridge-nf-call-iptables")) },
		explicitLoad: true, usedBy: "Services between pods on one node's bridge"},
	{name: "veth", required: true, needs: []need{n("VETH", "veth")},
		present: func(k *kernel) bool { return k.moduleLoaded("veth") },
		usedBy:  "the pods' network interfaces"},
	{name: "vxlan", required: true, needs: []need{n("VXLAN", "vxlan")},
		present: func(k *kernel) bool { return k.moduleLoaded("vxlan") },
		usedBy:  "flannel's vxlan network between nodes"},
	{name: "netfilter conntrack", required: true, needs: []need{n("NF_CONNTRACK", "nf_conntrack"), n("NF_NAT", "nf_nat")},
		usedBy: "Service NAT and pod masquerading"},
	{name: "nf_tables", required: true, needs: []need{n("NF_TABLES", "nf_tables"), n("NF_TABLES_INET", "nf_tables"), n("NF_TABLES_IPV4", "nf_tables")},
		usedBy: "kube-proxy (nftables mode) and flannel's masquerading"},
	{name: "nft expressions", required: true, needs: []need{
		n("NFT_CT", "nft_ct"), n("NFT_NAT NFT_CHAIN_NAT_IPV4", "nft_nat nft_chain_nat nft_chain_nat_ipv4"),
		n("NFT_MASQ NFT_MASQ_IPV4", "nft_masq nft_masq_ipv4"), n("NFT_NUMGEN", "nft_numgen"),
		n("NFT_FIB_IPV4", "nft_fib_ipv4"), n("NFT_REJECT", "nft_reject nft_reject_inet"),
	}, usedBy: "kube-proxy's and flannel's nftables rules (ct, nat, masq, numgen, fib, reject)"},
	{name: "iptables NAT", needs: []need{
		n("IP_NF_NAT NETFILTER_XT_NAT", "iptable_nat xt_nat"),
		n("IP_NF_TARGET_MASQUERADE NETFILTER_XT_TARGET_MASQUERADE", "xt_MASQUERADE ipt_MASQUERADE"),
		n("NETFILTER_XT_MATCH_COMMENT", "xt_comment"),
	}, usedBy: "kube-proxy's proxy-mode=iptables, and for hostPorts when the iptables command is installed"},
	{name: "seccomp", needs: []need{n("SECCOMP", ""), n("SECCOMP_FILTER", "")},
		present: func(k *kernel) bool { return exists(k.sys.proc("sys", "kernel", "seccomp", "actions_avail")) },
		usedBy:  "pods with the RuntimeDefault seccomp profile"},
}

// state of one need.
type state int

const (
	stBuiltin   state = iota // built in (config y, or modules.builtin)
	stLoaded                 // a loaded module
	stModule                 // a module that can be loaded
	stNoModules              // config m, but the module is not installed
	stMissing
	stUnknown // no config and no module lists to tell
)

func (k *kernel) needState(nd need) (state, string) {
	if k.config != nil {
		best := ""
		for _, o := range nd.options {
			switch v := k.config["CONFIG_"+o]; {
			case v == "y":
				return stBuiltin, ""
			case v == "m":
				best = o
			}
		}
		if best == "" {
			return stMissing, "CONFIG_" + nd.options[0]
		}
		if len(nd.modules) == 0 {
			return stBuiltin, "" // a bool option is never m
		}
		for _, m := range nd.modules {
			if k.moduleLoaded(m) {
				return stLoaded, m
			}
		}
		if k.modulesDir == "" || k.available == nil {
			return stNoModules, nd.modules[0]
		}
		for _, m := range nd.modules {
			if k.available[m] {
				return stModule, m
			}
		}
		return stNoModules, nd.modules[0]
	}
	for _, m := range nd.modules {
		switch {
		case k.loaded[m]:
			return stLoaded, m
		case k.builtin[m]:
			return stBuiltin, m
		case k.available[m]:
			return stModule, m
		}
	}
	if len(nd.modules) > 0 && k.builtin != nil && k.available != nil {
		return stMissing, nd.modules[0]
	}
	if len(nd.modules) == 0 {
		return stUnknown, "CONFIG_" + nd.options[0]
	}
	return stUnknown, strings.Join(nd.modules, "/")
}

func kernelResults(k *kernel) []Result {
	var out []Result
	out = append(out, kernelVersion(k))
	for _, f := range features {
		out = append(out, k.check(f))
	}
	out = append(out, namespaces(k.sys)...)
	return out
}

func (k *kernel) check(f feature) Result {
	r := Result{Group: GroupKernel, Name: f.name}
	absent := Warn
	if f.required {
		absent = Missing
	}
	if f.present != nil && f.present(k) {
		r.Status, r.Detail = OK, "present"
		return r
	}
	var missing, unknown, notLoaded, notInstalled []string
	loaded, builtin := 0, 0
	for _, nd := range f.needs {
		st, what := k.needState(nd)
		switch st {
		case stBuiltin:
			builtin++
		case stLoaded:
			loaded++
		case stModule:
			notLoaded = append(notLoaded, what)
		case stNoModules:
			notInstalled = append(notInstalled, what)
		case stMissing:
			missing = append(missing, what)
		case stUnknown:
			unknown = append(unknown, what)
		}
	}
	missing, unknown, notLoaded, notInstalled = dedup(missing), dedup(unknown), dedup(notLoaded), dedup(notInstalled)
	switch {
	case len(missing) > 0:
		r.Status = absent
		if k.config != nil {
			r.Detail = "not in the kernel config: " + strings.Join(missing, ", ")
			r.Hint = fmt.Sprintf("needed for %s: use a kernel built with %s (=y or =m)", f.usedBy, strings.Join(missing, ", "))
		} else {
			r.Detail = "no module " + strings.Join(missing, ", ") + " (not built in, not in modules.dep)"
			r.Hint = fmt.Sprintf("needed for %s: use a kernel that has it", f.usedBy)
		}
	case len(notInstalled) > 0:
		r.Status = absent
		r.Detail = fmt.Sprintf("built as module %s, which is not installed under %s", strings.Join(notInstalled, ", "), k.modulesDirName())
		r.Hint = fmt.Sprintf("needed for %s: install the kernel's modules (or, in a container, bind-mount /lib/modules from the host)", f.usedBy)
	case len(unknown) > 0:
		r.Status = Warn
		r.Detail = fmt.Sprintf("could not tell: no kernel config (/proc/config.gz, /boot/config-%s) and no module lists under %s", k.release, k.modulesDirName())
		r.Hint = fmt.Sprintf("needed for %s; make sure the kernel has %s", f.usedBy, strings.Join(unknown, ", "))
	case len(notLoaded) > 0 && f.explicitLoad:
		r.Status = absent
		r.Detail = "module " + strings.Join(notLoaded, ", ") + " is not loaded (the kernel does not load it on demand)"
		r.Hint = fmt.Sprintf("modprobe %s, and at boot: echo %s > /etc/modules-load.d/kedge.conf (kedge's service unit loads it)",
			strings.Join(notLoaded, " "), strings.Join(notLoaded, " "))
	case len(notLoaded) > 0:
		r.Status, r.Detail = OK, "module "+strings.Join(notLoaded, ", ")+" (loaded on first use)"
	case loaded > 0:
		r.Status, r.Detail = OK, "module loaded"
	default:
		r.Status, r.Detail = OK, "built in"
	}
	return r
}

func (k *kernel) modulesDirName() string {
	if k.modulesDir != "" {
		return k.modulesDir
	}
	return "/lib/modules/" + k.release
}

func kernelVersion(k *kernel) Result {
	r := Result{Group: GroupKernel, Name: "kernel version", Detail: k.release}
	atLeast, ok := k.versionAtLeast(kedgeMinKernel[0], kedgeMinKernel[1])
	switch {
	case !ok:
		r.Status, r.Detail = Warn, fmt.Sprintf("could not read the release from %s", k.sys.proc("sys", "kernel", "osrelease"))
	case atLeast:
		r.Status = OK
	default:
		r.Status = Missing
		r.Hint = fmt.Sprintf("kube-proxy's nftables mode needs %d.%d or newer: upgrade, or run with --kube-proxy-arg proxy-mode=iptables",
			kedgeMinKernel[0], kedgeMinKernel[1])
	}
	return r
}

// namespaces checks /proc/self/ns: what this kernel offers is what this
// process has.
func namespaces(sys System) []Result {
	dir := sys.proc("self", "ns")
	if !exists(dir) {
		return []Result{{Group: GroupKernel, Name: "namespaces", Status: Warn,
			Detail: "could not tell: " + dir + " is missing", Hint: "kedge needs pid, net, ipc, uts and mount namespaces"}}
	}
	var lacking []string
	for _, ns := range []string{"pid", "net", "ipc", "uts", "mnt"} {
		if !exists(sys.proc("self", "ns", ns)) {
			lacking = append(lacking, ns)
		}
	}
	r := Result{Group: GroupKernel, Name: "namespaces", Status: OK, Detail: "pid, net, ipc, uts, mount"}
	if len(lacking) > 0 {
		r.Status, r.Detail = Missing, "no "+strings.Join(lacking, ", ")+" namespace"
		r.Hint = "use a kernel built with CONFIG_NAMESPACES and CONFIG_PID_NS, CONFIG_NET_NS, CONFIG_IPC_NS, CONFIG_UTS_NS"
	}
	out := []Result{r}
	for _, o := range []struct{ ns, name, hint string }{
		{"user", "user namespace", "only pods with hostUsers: false need it (CONFIG_USER_NS)"},
		{"cgroup", "cgroup namespace", "without it containers see the host's cgroup paths (CONFIG_CGROUPS ns support, kernel 4.6+)"},
	} {
		r := Result{Group: GroupKernel, Name: o.name, Status: OK, Detail: "present"}
		if !exists(sys.proc("self", "ns", o.ns)) {
			r.Status, r.Detail, r.Hint = Warn, "absent (optional)", o.hint
		}
		out = append(out, r)
	}
	return out
}

func hasFilesystem(sys System, name string) bool {
	b, err := os.ReadFile(sys.proc("filesystems"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[len(fields)-1] == name {
			return true
		}
	}
	return false
}

func dedup(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
