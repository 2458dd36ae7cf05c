package checkconfig

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// kernel is what is known about the running kernel: its release, its
// config (when a config file is present) and its modules.
type kernel struct {
	sys          System
	release      string
	configSource string
	config       map[string]string // CONFIG_X -> "y" / "m"; unset options absent
	// modulesDir is /lib/modules/<release>, "" if it does not exist.
	modulesDir string
	builtin    map[string]bool // modules.builtin
	available  map[string]bool // modules.dep: loadable modules
	loaded     map[string]bool // /proc/modules
}

func loadKernel(sys System) *kernel {
	k := &kernel{sys: sys, release: readString(sys.proc("sys", "kernel", "osrelease"))}
	k.loadConfig()
	k.loaded = map[string]bool{}
	if f, err := os.Open(sys.proc("modules")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Fields(sc.Text()); len(fields) > 0 {
				k.loaded[moduleName(fields[0])] = true
			}
		}
		f.Close()
	}
	if k.release != "" {
		dir := filepath.Join(sys.LibModulesRoot, k.release)
		if exists(dir) {
			k.modulesDir = dir
			k.builtin = moduleList(filepath.Join(dir, "modules.builtin"))
			k.available = moduleList(filepath.Join(dir, "modules.dep"))
		}
	}
	return k
}

// loadConfig reads /proc/config.gz, else /boot/config-<release>.
func (k *kernel) loadConfig() {
	try := func(path string, gz bool) bool {
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		var r io.Reader = f
		if gz {
			zr, err := gzip.NewReader(f)
			if err != nil {
				return false
			}
			r = zr
		}
		cfg, err := parseConfig(r)
		if err != nil || len(cfg) == 0 {
			return false
		}
		k.config, k.configSource = cfg, path
		return true
	}
	if try(k.sys.proc("config.gz"), true) {
		return
	}
	if k.release != "" {
		try(filepath.Join(k.sys.BootRoot, "config-"+k.release), false)
	}
}

// parseConfig reads a kernel .config: CONFIG_X=y|m|value lines.
func parseConfig(r io.Reader) (map[string]string, error) {
	cfg := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "CONFIG_") {
			continue
		}
		if name, val, ok := strings.Cut(line, "="); ok {
			cfg[name] = val
		}
	}
	return cfg, sc.Err()
}

// moduleList reads modules.builtin or modules.dep: one module path per
// line ("kernel/net/bridge/br_netfilter.ko.xz: deps…"), keyed by name.
func moduleList(path string) map[string]bool {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p, _, _ := strings.Cut(sc.Text(), ":")
		base := filepath.Base(strings.TrimSpace(p))
		if i := strings.Index(base, ".ko"); i > 0 {
			out[moduleName(base[:i])] = true
		}
	}
	return out
}

// moduleName normalises a module name: the kernel treats - and _ alike.
func moduleName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleLoaded reports whether module is loaded or built in and visible in
// /sys/module (built-in modules appear there only when they have
// parameters, so absence proves nothing).
func (k *kernel) moduleLoaded(module string) bool {
	return k.loaded[module] || exists(k.sys.sys("module", module))
}

// versionAtLeast reports whether the kernel release is at least major.minor;
// ok is false when the release cannot be parsed.
func (k *kernel) versionAtLeast(major, minor int) (atLeast, ok bool) {
	num := func(s string) (int, error) {
		if end := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); end >= 0 {
			s = s[:end]
		}
		return strconv.Atoi(s)
	}
	parts := strings.SplitN(k.release, ".", 3)
	if len(parts) < 2 {
		return false, false
	}
	ma, err1 := num(parts[0])
	mi, err2 := num(parts[1])
	if err1 != nil || err2 != nil {
		return false, false
	}
	return ma > major || (ma == major && mi >= minor), true
}
