package main

// Tools that describe files: ls, stat, readlink, find.

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

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
