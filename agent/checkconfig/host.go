package checkconfig

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func commandResults(sys System) []Result {
	out := []Result{}
	for _, c := range []struct {
		name, usedBy, hint string
		required           bool
	}{
		{"nft", "kube-proxy (nftables mode) and flannel", "install nftables (apt-get install nftables, apk add nftables)", true},
		{"iptables", "only kube-proxy's proxy-mode=iptables; hostPorts use it when it is installed, else nftables",
			"install iptables only for --kube-proxy-arg proxy-mode=iptables", false},
	} {
		r := Result{Group: GroupCommands, Name: c.name}
		if path, err := sys.LookPath(c.name); err == nil {
			r.Status, r.Detail = OK, path
		} else {
			r.Status, r.Detail, r.Hint = Warn, "not found on PATH ("+c.usedBy+")", c.hint
			if c.required {
				r.Status = Missing
			}
		}
		out = append(out, r)
	}
	return out
}

// Free-space thresholds for the data dir and the kubelet dir: below
// minFree, images and logs soon fill the disk; below minFreePercent the
// kubelet evicts pods (its evictionHard nodefs/imagefs.available is 5%).
const (
	minFree        = 2 << 30
	minFreePercent = 5
)

func storageResults(sys System) []Result {
	out := []Result{
		storage(sys, "data dir", sys.DataDir, "--data-dir"),
		storage(sys, "kubelet dir", sys.KubeletDir, ""),
	}
	return append(out, swap(sys))
}

func storage(sys System, name, dir, flag string) Result {
	r := Result{Group: GroupStorage, Name: name}
	at := dir
	for !exists(at) && filepath.Dir(at) != at {
		at = filepath.Dir(at)
	}
	fs, err := sys.Statfs(at)
	if err != nil {
		r.Status, r.Detail = Warn, "could not stat: "+err.Error()
		return r
	}
	where := ""
	if at != dir {
		where = fmt.Sprintf(" (not made yet; %s is)", at)
	}
	r.Detail = fmt.Sprintf("%s: %s, %s free of %s%s", dir, fs.Type, gib(fs.Free), gib(fs.Size), where)
	move := "put it on a disk file system (ext4, xfs, btrfs)"
	if flag != "" {
		move = "give " + flag + " on a disk file system (ext4, xfs, btrfs)"
	}
	switch fs.Type {
	case "ext4", "ext3", "ext2", "xfs", "btrfs", "f2fs", "zfs":
		r.Status = OK
	case "overlayfs":
		r.Status = Missing
		r.Hint = "containerd's overlayfs snapshotter cannot keep its layers on overlayfs; " + move
	case "squashfs", "erofs", "iso9660":
		r.Status = Missing
		r.Hint = "read-only file system; " + move
	case "vfat", "exfat", "ntfs":
		r.Status = Missing
		r.Hint = "no Unix permissions, symlinks or xattrs; " + move
	case "tmpfs", "ramfs":
		r.Status = Warn
		r.Hint = "held in memory: images and state are gone after a reboot, and a device that reboots offline cannot restart its pods; " + move
	default:
		r.Status = Warn
		r.Hint = "kedge is untested on " + fs.Type + " (overlayfs may refuse it); " + move
	}
	if r.Status == OK && fs.Size > 0 && (fs.Free < minFree || fs.Free*100 < fs.Size*minFreePercent) {
		r.Status = Warn
		r.Hint = fmt.Sprintf("little space: under %s or %d%% free, images fill it and the kubelet evicts pods; free some space", gib(minFree), minFreePercent)
	}
	return r
}

func gib(b uint64) string {
	return strconv.FormatFloat(float64(b)/(1<<30), 'f', 1, 64) + " GiB"
}

// swap reads /proc/swaps. The kubelet runs with failSwapOn=false, so it
// starts with swap on, but memory limits and eviction get less predictable.
func swap(sys System) Result {
	r := Result{Group: GroupStorage, Name: "swap", Status: OK, Detail: "off"}
	ls := lines(sys.proc("swaps"))
	if ls == nil {
		r.Status, r.Detail = Warn, "could not read "+sys.proc("swaps")
		return r
	}
	var kib uint64
	for _, l := range ls[1:] {
		if f := strings.Fields(l); len(f) >= 3 {
			n, _ := strconv.ParseUint(f[2], 10, 64)
			kib += n
		}
	}
	if len(ls) > 1 {
		r.Status = Warn
		r.Detail = "on, " + gib(kib<<10) + "; the kubelet runs with failSwapOn=false, so it starts"
		r.Hint = "for predictable memory limits and eviction: swapoff -a, and remove swap from /etc/fstab"
	}
	return r
}

func privilegeResults(sys System) []Result {
	root := Result{Group: GroupPrivileges, Name: "root", Status: OK, Detail: "euid 0"}
	if sys.Euid != 0 {
		root.Status, root.Detail = Missing, fmt.Sprintf("euid %d", sys.Euid)
		root.Hint = "run kedge as root: it mounts, makes network devices and runs containers"
	}
	oom := Result{Group: GroupPrivileges, Name: "oom_score_adj", Status: OK, Detail: "can be lowered"}
	if !sys.CanLowerOOMScoreAdj() {
		oom.Status, oom.Detail = Warn, "cannot be lowered (no CAP_SYS_RESOURCE, e.g. in a container)"
		oom.Hint = "containerd then runs with restrict_oom_score_adj and pods keep the agent's value; run kedge with CAP_SYS_RESOURCE"
	}
	return []Result{root, oom}
}

// fsTypes names statfs magic numbers.
var fsTypes = map[uint32]string{
	0xEF53: "ext4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0xF2F52010: "f2fs", 0x2FC12FC1: "zfs",
	0x01021994: "tmpfs", 0x858458F6: "ramfs", 0x794C7630: "overlayfs", 0x73717368: "squashfs",
	0xE0F5E1E2: "erofs", 0x9660: "iso9660", 0x4D44: "vfat", 0x2011BAB0: "exfat", 0x5346544E: "ntfs",
	0x6969: "nfs", 0xFF534D42: "cifs", 0x65735546: "fuse", 0x24051905: "ubifs", 0x72B6: "jffs2",
}

func statfs(path string) (FS, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return FS{}, err
	}
	name, ok := fsTypes[uint32(st.Type)] // int32 on 32-bit ARM
	if !ok {
		name = fmt.Sprintf("0x%x", st.Type)
	}
	return FS{Type: name, Free: st.Bavail * uint64(st.Bsize), Size: st.Blocks * uint64(st.Bsize)}, nil
}
