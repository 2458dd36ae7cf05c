package main

// Tools that read, write, copy and remove files: cat, mkdir, touch, rm, cp, mv, ln, chmod, chown, dd.

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

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
