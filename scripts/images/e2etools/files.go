package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }

// open is os.Open, or stdin for "-".
func open(p string) (io.ReadCloser, error) {
	if p == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(p)
}

func cat(args []string) int {
	_, files := flags(args, "")
	if len(files) == 0 {
		files = []string{"-"}
	}
	st := 0
	for _, f := range files {
		r, err := open(f)
		if err != nil {
			st = fail("cat", err)
			continue
		}
		if _, err := io.Copy(os.Stdout, r); err != nil {
			st = fail("cat", err)
		}
		r.Close()
	}
	return st
}

// ls supports -l -n -a -d -1 -i -R (the last two as plain listings).
func ls(args []string) int {
	opts, paths := flags(args, "")
	if len(paths) == 0 {
		paths = []string{"."}
	}
	long := has(opts, 'l') || has(opts, 'n')
	st := 0
	print := func(dir, name string, fi os.FileInfo) {
		if !long {
			fmt.Println(name)
			return
		}
		s, _ := fi.Sys().(*syscall.Stat_t)
		uid, gid, nlink := uint32(0), uint32(0), uint64(1)
		if s != nil {
			uid, gid, nlink = s.Uid, s.Gid, uint64(s.Nlink)
		}
		line := fmt.Sprintf("%s %d %d %d %d %s %s", modeString(fi.Mode()), nlink, uid, gid, fi.Size(), fi.ModTime().Format("Jan _2 15:04"), name)
		if fi.Mode()&os.ModeSymlink != 0 {
			if t, err := os.Readlink(filepath.Join(dir, name)); err == nil {
				line += " -> " + t
			}
		}
		fmt.Println(line)
	}
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			st = fail("ls", err)
			continue
		}
		if !fi.IsDir() || has(opts, 'd') {
			print(filepath.Dir(p), p, fi)
			continue
		}
		if len(paths) > 1 {
			fmt.Printf("%s:\n", p)
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			st = fail("ls", err)
			continue
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") && !has(opts, 'a') && !has(opts, 'A') {
				continue
			}
			if fi, err := os.Lstat(filepath.Join(p, e.Name())); err == nil {
				print(p, e.Name(), fi)
			}
		}
	}
	return st
}

// modeString is ls -l's mode column (drwxr-xr-x, with s/t bits).
func modeString(m os.FileMode) string {
	b := []byte("----------")
	switch {
	case m.IsDir():
		b[0] = 'd'
	case m&os.ModeSymlink != 0:
		b[0] = 'l'
	case m&os.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&os.ModeSocket != 0:
		b[0] = 's'
	case m&os.ModeCharDevice != 0:
		b[0] = 'c'
	case m&os.ModeDevice != 0:
		b[0] = 'b'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m.Perm()&(1<<uint(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	if m&os.ModeSetuid != 0 {
		b[3] = 's'
	}
	if m&os.ModeSetgid != 0 {
		b[6] = 's'
	}
	if m&os.ModeSticky != 0 {
		b[9] = 't'
	}
	return string(b)
}

func sleep(args []string) int {
	var total time.Duration
	for _, a := range args {
		if a == "infinity" || a == "inf" {
			for { // a bare select{} would be a deadlock to the runtime
				time.Sleep(time.Hour)
			}
		}
		unit := time.Second
		switch {
		case strings.HasSuffix(a, "m"):
			unit, a = time.Minute, strings.TrimSuffix(a, "m")
		case strings.HasSuffix(a, "h"):
			unit, a = time.Hour, strings.TrimSuffix(a, "h")
		case strings.HasSuffix(a, "d"):
			unit, a = 24*time.Hour, strings.TrimSuffix(a, "d")
		case strings.HasSuffix(a, "s"):
			a = strings.TrimSuffix(a, "s")
		}
		f, err := strconv.ParseFloat(a, 64)
		if err != nil {
			return fail("sleep", fmt.Errorf("invalid number %q", a))
		}
		total += time.Duration(f * float64(unit))
	}
	time.Sleep(total)
	return 0
}

func mkdir(args []string) int {
	opts, dirs := flags(args, "m")
	mode := os.FileMode(0o777)
	if m, ok := opts['m']; ok {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil {
			return fail("mkdir", fmt.Errorf("invalid mode %q", m))
		}
		mode = os.FileMode(v)
	}
	st := 0
	for _, d := range dirs {
		var err error
		if has(opts, 'p') {
			err = os.MkdirAll(d, mode)
		} else {
			err = os.Mkdir(d, mode)
		}
		if err == nil && has(opts, 'm') {
			err = os.Chmod(d, mode)
		}
		if err != nil {
			st = fail("mkdir", err)
		}
	}
	return st
}

func touch(args []string) int {
	_, files := flags(args, "dt")
	st := 0
	now := time.Now()
	for _, f := range files {
		fh, err := os.OpenFile(f, os.O_CREATE|os.O_WRONLY, 0o666)
		if err == nil {
			fh.Close()
			err = os.Chtimes(f, now, now)
		}
		if err != nil {
			st = fail("touch", err)
		}
	}
	return st
}

func rm(args []string) int {
	opts, files := flags(args, "")
	st := 0
	for _, f := range files {
		var err error
		if has(opts, 'r') || has(opts, 'R') {
			err = os.RemoveAll(f)
		} else {
			err = os.Remove(f)
		}
		if err != nil && !(has(opts, 'f') && os.IsNotExist(err)) {
			st = fail("rm", err)
		}
	}
	return st
}

func copyFile(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if di, err := os.Stat(dst); err == nil && di.IsDir() {
		dst = filepath.Join(dst, filepath.Base(src))
	}
	if fi.IsDir() {
		return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			t := filepath.Join(dst, rel)
			if d.IsDir() {
				return os.MkdirAll(t, 0o755)
			}
			return copyFile(p, t)
		})
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func cp(args []string) int {
	_, files := flags(args, "")
	if len(files) < 2 {
		return fail("cp", fmt.Errorf("missing destination"))
	}
	st := 0
	dst := files[len(files)-1]
	for _, src := range files[:len(files)-1] {
		if err := copyFile(src, dst); err != nil {
			st = fail("cp", err)
		}
	}
	return st
}

func mv(args []string) int {
	_, files := flags(args, "")
	if len(files) < 2 {
		return fail("mv", fmt.Errorf("missing destination"))
	}
	dst := files[len(files)-1]
	st := 0
	for _, src := range files[:len(files)-1] {
		t := dst
		if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
			t = filepath.Join(dst, filepath.Base(src))
		}
		if err := os.Rename(src, t); err != nil {
			st = fail("mv", err)
		}
	}
	return st
}

func ln(args []string) int {
	opts, files := flags(args, "")
	if len(files) != 2 {
		return fail("ln", fmt.Errorf("want TARGET LINK"))
	}
	if has(opts, 'f') {
		os.Remove(files[1])
	}
	var err error
	if has(opts, 's') {
		err = os.Symlink(files[0], files[1])
	} else {
		err = os.Link(files[0], files[1])
	}
	if err != nil {
		return fail("ln", err)
	}
	return 0
}

func chmod(args []string) int {
	_, files := flags(args, "")
	if len(files) < 2 {
		return fail("chmod", fmt.Errorf("want MODE FILE..."))
	}
	v, err := strconv.ParseUint(files[0], 8, 32)
	if err != nil {
		return fail("chmod", fmt.Errorf("only octal modes: %q", files[0]))
	}
	m := os.FileMode(v & 0o777)
	if v&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if v&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if v&0o1000 != 0 {
		m |= os.ModeSticky
	}
	st := 0
	for _, f := range files[1:] {
		if err := os.Chmod(f, m); err != nil {
			st = fail("chmod", err)
		}
	}
	return st
}

func chown(args []string) int {
	_, files := flags(args, "")
	if len(files) < 2 {
		return fail("chown", fmt.Errorf("want UID[:GID] FILE..."))
	}
	u, g, _ := strings.Cut(files[0], ":")
	uid, err := strconv.Atoi(u)
	if err != nil {
		return fail("chown", fmt.Errorf("numeric ids only: %q", files[0]))
	}
	gid := -1
	if g != "" {
		if gid, err = strconv.Atoi(g); err != nil {
			return fail("chown", fmt.Errorf("numeric ids only: %q", files[0]))
		}
	}
	st := 0
	for _, f := range files[1:] {
		if err := os.Lchown(f, uid, gid); err != nil {
			st = fail("chown", err)
		}
	}
	return st
}

// stat supports -c/--format with %a %A %u %g %U %G %s %n %F %h %i %Y %X.
func stat(args []string) int {
	var format string
	var files []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-c" && i+1 < len(args):
			i++
			format = args[i]
		case strings.HasPrefix(a, "--format="), strings.HasPrefix(a, "--printf="):
			_, format, _ = strings.Cut(a, "=")
		case a == "-L":
		default:
			files = append(files, a)
		}
	}
	st := 0
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			st = fail("stat", err)
			continue
		}
		s := fi.Sys().(*syscall.Stat_t)
		if format == "" {
			fmt.Printf("  File: %s\n  Size: %d\nAccess: (%04o/%s)  Uid: (%d)  Gid: (%d)\n", f, fi.Size(), permBits(fi.Mode()), modeString(fi.Mode()), s.Uid, s.Gid)
			continue
		}
		var b strings.Builder
		for i := 0; i < len(format); i++ {
			if format[i] != '%' || i+1 == len(format) {
				b.WriteByte(format[i])
				continue
			}
			i++
			switch format[i] {
			case 'a':
				fmt.Fprintf(&b, "%o", permBits(fi.Mode()))
			case 'A':
				b.WriteString(modeString(fi.Mode()))
			case 'u':
				fmt.Fprint(&b, s.Uid)
			case 'g':
				fmt.Fprint(&b, s.Gid)
			case 'U':
				b.WriteString(userName(int(s.Uid)))
			case 'G':
				b.WriteString(groupName(int(s.Gid)))
			case 's':
				fmt.Fprint(&b, fi.Size())
			case 'n':
				b.WriteString(f)
			case 'h':
				fmt.Fprint(&b, s.Nlink)
			case 'i':
				fmt.Fprint(&b, s.Ino)
			case 'Y':
				fmt.Fprint(&b, fi.ModTime().Unix())
			case 'X':
				fmt.Fprint(&b, s.Atim.Sec)
			case 'F':
				switch {
				case fi.IsDir():
					b.WriteString("directory")
				case fi.Mode().IsRegular() && fi.Size() == 0:
					b.WriteString("regular empty file")
				case fi.Mode().IsRegular():
					b.WriteString("regular file")
				default:
					b.WriteString("special file")
				}
			case '%':
				b.WriteByte('%')
			}
		}
		fmt.Println(b.String())
	}
	return st
}

// permBits is the octal permission with setuid/setgid/sticky (stat %a).
func permBits(m os.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

func readlink(args []string) int {
	opts, files := flags(args, "")
	st := 0
	for _, f := range files {
		var t string
		var err error
		if has(opts, 'f') {
			t, err = filepath.EvalSymlinks(f)
			if err == nil {
				t, err = filepath.Abs(t)
			}
		} else {
			t, err = os.Readlink(f)
		}
		if err != nil {
			st = 1
			continue
		}
		fmt.Println(t)
	}
	return st
}

// dd supports if= of= bs= count= (sizes with k/M/G suffixes).
func dd(args []string) int {
	in, out, bs, count := "-", "-", int64(512), int64(-1)
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "if":
			in = v
		case "of":
			out = v
		case "bs":
			bs = size(v)
		case "count":
			count = size(v)
		}
	}
	r, err := open(in)
	if err != nil {
		return fail("dd", err)
	}
	defer r.Close()
	var w io.WriteCloser = os.Stdout
	if out != "-" {
		if w, err = os.Create(out); err != nil {
			return fail("dd", err)
		}
	}
	var src io.Reader = r
	if count >= 0 {
		src = io.LimitReader(r, bs*count)
	}
	n, err := io.CopyBuffer(w, src, make([]byte, bs))
	if err != nil {
		return fail("dd", err)
	}
	if err := w.Close(); err != nil {
		return fail("dd", err)
	}
	fmt.Fprintf(os.Stderr, "%d+0 records in\n%d+0 records out\n", n/bs, n/bs)
	return 0
}

func size(v string) int64 {
	mult := int64(1)
	switch {
	case strings.HasSuffix(v, "k"), strings.HasSuffix(v, "K"):
		mult, v = 1024, v[:len(v)-1]
	case strings.HasSuffix(v, "M"):
		mult, v = 1<<20, v[:len(v)-1]
	case strings.HasSuffix(v, "G"):
		mult, v = 1<<30, v[:len(v)-1]
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n * mult
}

func df(args []string) int {
	_, paths := flags(args, "")
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	fmt.Println("Filesystem           1K-blocks      Used Available Use% Mounted on")
	for _, p := range paths {
		var s syscall.Statfs_t
		if err := syscall.Statfs(p, &s); err != nil {
			return fail("df", err)
		}
		total, free := s.Blocks*uint64(s.Bsize)/1024, s.Bavail*uint64(s.Bsize)/1024
		used := total - s.Bfree*uint64(s.Bsize)/1024
		pct := 0
		if total > 0 {
			pct = int(used * 100 / total)
		}
		fmt.Printf("%-20s %9d %9d %9d %3d%% %s\n", "overlay", total, used, free, pct, p)
	}
	return 0
}

// find supports PATH... [-name GLOB] [-type f|d] [-maxdepth N].
func find(args []string) int {
	var roots []string
	var pattern, typ string
	maxDepth := -1
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-name":
			i++
			pattern = args[i]
		case "-type":
			i++
			typ = args[i]
		case "-maxdepth":
			i++
			maxDepth, _ = strconv.Atoi(args[i])
		default:
			roots = append(roots, args[i])
		}
	}
	if len(roots) == 0 {
		roots = []string{"."}
	}
	st := 0
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				st = fail("find", err)
				return nil
			}
			if maxDepth >= 0 && strings.Count(strings.TrimPrefix(p, root), "/") > maxDepth {
				return fs.SkipDir
			}
			if pattern != "" {
				if ok, _ := filepath.Match(pattern, d.Name()); !ok {
					return nil
				}
			}
			if (typ == "f" && !d.Type().IsRegular()) || (typ == "d" && !d.IsDir()) {
				return nil
			}
			fmt.Println(p)
			return nil
		})
		if err != nil {
			st = fail("find", err)
		}
	}
	return st
}

// mount without arguments prints the mount table, as busybox does.
func mount(args []string) int {
	if len(args) > 0 {
		return fail("mount", fmt.Errorf("only listing is supported"))
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return fail("mount", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 {
			fmt.Printf("%s on %s type %s (%s)\n", f[0], f[1], f[2], f[3])
		}
	}
	return 0
}
