package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/robfig/cron/v3"

	"github.com/kedge/kedge/agent/network/hostip"
	"github.com/kedge/kedge/shared/datadir"
	"github.com/kedge/kedge/shared/token"
)

// DatastoreKind says which backend stores the cluster state.
type DatastoreKind string

const (
	// DatastoreSQLite is kine over a local SQLite file (the default).
	DatastoreSQLite DatastoreKind = "sqlite"
	// DatastoreSQL is kine over an external PostgreSQL or MySQL.
	DatastoreSQL DatastoreKind = "sql"
	// DatastoreExternalEtcd is an etcd cluster kedge does not run.
	DatastoreExternalEtcd DatastoreKind = "external-etcd"
	// DatastoreEmbeddedEtcd is an etcd member inside the kedge process.
	DatastoreEmbeddedEtcd DatastoreKind = "embedded-etcd"
)

// SQLiteParams are the connection parameters kedge uses for SQLite unless the
// endpoint sets its own. synchronous=FULL makes every commit durable on power
// loss, which edge devices without a UPS need more than the extra fsync time.
// auto_vacuum=incremental lets kedge give the pages that compaction freed
// back to the file system (embedded/kine.Maintainer); kine's VACUUM at start
// turns it on for a database made without it.
const SQLiteParams = "_journal_mode=WAL&_synchronous=FULL&_auto_vacuum=incremental&_busy_timeout=30000&_txlock=immediate&_stmt_cache_size=20&cache=shared"

// Completed is a validated Config plus everything derived from it.
type Completed struct {
	Config
	Paths datadir.Server

	Datastore DatastoreKind
	// KineEndpoint is the kine DSN for DatastoreSQLite and DatastoreSQL.
	KineEndpoint string

	NodeName    string
	NodeIP      net.IP
	AdvertiseIP net.IP
	// ServiceIP is the kubernetes Service's ClusterIP (first of the range).
	ServiceIP net.IP

	APIServerDNS []string
	APIServerIPs []net.IP

	KubeconfigMode os.FileMode
	// GivenToken is the parsed --token, zero if none was given.
	GivenToken token.Token
	// GivenAgentToken is the parsed --agent-token, zero if none was given.
	GivenAgentToken token.Token

	// SnapshotSchedule is the parsed --snapshot-schedule-cron (nil with
	// --disable-snapshots); SnapshotDir is then absolute.
	SnapshotSchedule cron.Schedule
}

// Complete validates c and derives the values the components need. It may
// look at the host (hostname, interfaces, an existing etcd dir) but changes
// nothing.
func (c Config) Complete() (*Completed, error) {
	tokens, err := c.check()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	c.DataDir = abs
	cc := &Completed{Config: c, Paths: datadir.NewServer(abs)}

	cc.Datastore, cc.KineEndpoint = datastore(c, cc.Paths)
	if cc.Datastore == DatastoreEmbeddedEtcd {
		if err := embeddedEtcdSupported(runtime.GOARCH); err != nil {
			return nil, err
		}
	}

	if cc.NodeName, err = nodeName(c.NodeName); err != nil {
		return nil, err
	}
	if c.NodeIP != "" {
		cc.NodeIP = net.ParseIP(c.NodeIP)
	} else if cc.NodeIP, err = hostip.Detect(); err != nil {
		return nil, err
	}
	cc.AdvertiseIP = cc.NodeIP
	if c.AdvertiseAddress != "" {
		cc.AdvertiseIP = net.ParseIP(c.AdvertiseAddress)
	}

	serviceNet := netip.MustParsePrefix(c.ServiceCIDR)
	cc.ServiceIP = net.IP(serviceNet.Addr().Next().AsSlice())

	cc.APIServerDNS = uniq(append([]string{
		"localhost", cc.NodeName, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc." + c.ClusterDomain,
	}, dnsSANs(c.TLSSANs)...))
	cc.APIServerIPs = UniqueIPs(append([]net.IP{
		net.ParseIP("127.0.0.1"), net.ParseIP("::1"), cc.NodeIP, cc.AdvertiseIP, cc.ServiceIP,
	}, ipSANs(c.TLSSANs)...)...)

	mode, _ := ParseFileMode(c.WriteKubeconfigMode)
	cc.KubeconfigMode = os.FileMode(mode)
	cc.GivenToken, cc.GivenAgentToken = tokens.Server, tokens.Agent
	if !c.DisableSnapshots {
		cc.SnapshotSchedule, _ = cron.ParseStandard(c.SnapshotScheduleCron) // checked above
		if cc.SnapshotDir == "" {
			cc.SnapshotDir = cc.Paths.SnapshotsDir
		} else if cc.SnapshotDir, err = filepath.Abs(cc.SnapshotDir); err != nil {
			return nil, fmt.Errorf("--snapshot-dir: %w", err)
		}
	}
	return cc, nil
}

func datastore(c Config, p datadir.Server) (DatastoreKind, string) {
	ep := c.DatastoreEndpoint
	switch {
	case strings.HasPrefix(ep, "sqlite://"):
		if !strings.Contains(ep, "?") {
			ep += "?" + SQLiteParams
		}
		return DatastoreSQLite, ep
	case strings.HasPrefix(ep, "postgres"), strings.HasPrefix(ep, "mysql"):
		return DatastoreSQL, ep
	case ep != "":
		return DatastoreExternalEtcd, ""
	case c.ClusterInit || c.Server != "" || dirExists(p.EtcdDir):
		// An etcd dir from an earlier --cluster-init or --server start is used
		// without the flag.
		return DatastoreEmbeddedEtcd, ""
	default:
		return DatastoreSQLite, "sqlite://" + p.SQLiteFile + "?" + SQLiteParams
	}
}

// embeddedEtcdSupported refuses embedded etcd on 32-bit architectures:
// upstream etcd does not support them (it starts only with
// ETCD_UNSUPPORTED_ARCH set), and bbolt's memory map of the database is
// capped by a 32-bit address space.
func embeddedEtcdSupported(goarch string) error {
	switch goarch {
	case "arm", "386", "mips", "mipsle":
		return fmt.Errorf("embedded etcd (--cluster-init, --server, or an etcd directory in the data dir) is not supported on 32-bit %s; use the default SQLite datastore or --datastore-endpoint", goarch)
	}
	return nil
}

func nodeName(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("detect node name: %w; set --node-name", err)
	}
	host = strings.ToLower(host)
	if !validDNSName(host) {
		return "", fmt.Errorf("hostname %q is not a valid node name; set --node-name", host)
	}
	return host, nil
}

func dnsSANs(sans []string) []string {
	var out []string
	for _, s := range sans {
		if net.ParseIP(s) == nil {
			out = append(out, s)
		}
	}
	return out
}

func ipSANs(sans []string) []net.IP {
	var out []net.IP
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			out = append(out, ip)
		}
	}
	return out
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// UniqueIPs returns ips without nils and duplicates, in order.
func UniqueIPs(in ...net.IP) []net.IP {
	var out []net.IP
	for _, ip := range in {
		dup := ip == nil
		for _, o := range out {
			dup = dup || o.Equal(ip)
		}
		if !dup {
			out = append(out, ip)
		}
	}
	return out
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// AddonDisabled reports whether --disable names the add-on.
func (c *Completed) AddonDisabled(name string) bool { return slices.Contains(c.Disable, name) }
