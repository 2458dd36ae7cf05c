package main

// Line filters: grep, head, tail, wc, sort, tee, cut, tr, md5sum, hexdump.

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// lines calls fn for each line of the files (or stdin).
func lines(tool string, files []string, fn func(file, line string)) int {
	if len(files) == 0 {
		files = []string{"-"}
	}
	st := 0
	for _, f := range files {
		r, err := open(f)
		if err != nil {
			st = fail(tool, err)
			continue
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 16<<20)
		for sc.Scan() {
			fn(f, sc.Text())
		}
		r.Close()
	}
	return st
}

// grep supports -q -v -i -c -E -F -o -w -e PATTERN.
func grep(args []string) int {
	opts, rest := flags(args, "e")
	pattern, ok := opts['e']
	if !ok {
		if len(rest) == 0 {
			return fail("grep", fmt.Errorf("missing pattern"))
		}
		pattern, rest = rest[0], rest[1:]
	}
	if has(opts, 'F') {
		pattern = regexp.QuoteMeta(pattern)
	} else if !has(opts, 'E') {
		pattern = strings.NewReplacer(`\|`, "|", `\(`, "(", `\)`, ")", `\+`, "+", `\?`, "?").Replace(pattern)
	}
	if has(opts, 'w') {
		pattern = `\b(?:` + pattern + `)\b`
	}
	if has(opts, 'i') {
		pattern = "(?i)" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fail("grep", err)
	}
	count := 0
	st := lines("grep", rest, func(file, line string) {
		if re.MatchString(line) == has(opts, 'v') {
			return
		}
		count++
		switch {
		case has(opts, 'q'), has(opts, 'c'):
		case has(opts, 'o'):
			for _, m := range re.FindAllString(line, -1) {
				fmt.Println(m)
			}
		case len(rest) > 1:
			fmt.Printf("%s:%s\n", file, line)
		default:
			fmt.Println(line)
		}
	})
	if has(opts, 'c') {
		fmt.Println(count)
	}
	if st != 0 {
		return 2
	}
	if count == 0 {
		return 1
	}
	return 0
}

func headTailN(opts map[byte]string, rest []string) (int, []string) {
	n := 10
	if v, ok := opts['n']; ok {
		n, _ = strconv.Atoi(strings.TrimPrefix(v, "+"))
	}
	if len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
		n, _ = strconv.Atoi(rest[0][1:])
		rest = rest[1:]
	}
	return n, rest
}

func head(args []string) int {
	opts, rest := flags(args, "nc")
	if v, ok := opts['c']; ok {
		n, _ := strconv.ParseInt(v, 10, 64)
		r, err := open(append(rest, "-")[0])
		if err != nil {
			return fail("head", err)
		}
		io.Copy(os.Stdout, io.LimitReader(r, n))
		return 0
	}
	n, rest := headTailN(opts, rest)
	i := 0
	return lines("head", rest, func(_, line string) {
		if i < n {
			fmt.Println(line)
		}
		i++
	})
}

// tail supports -n N and -f (follows one file, as tail -f /dev/null waits).
func tail(args []string) int {
	opts, rest := flags(args, "nc")
	n, rest := headTailN(opts, rest)
	var buf []string
	st := lines("tail", rest, func(_, line string) {
		buf = append(buf, line)
		if len(buf) > n {
			buf = buf[1:]
		}
	})
	for _, l := range buf {
		fmt.Println(l)
	}
	if has(opts, 'f') && len(rest) > 0 {
		f, err := os.Open(rest[0])
		if err != nil {
			return fail("tail", err)
		}
		f.Seek(0, io.SeekEnd)
		for {
			if _, err := io.Copy(os.Stdout, f); err != nil {
				return fail("tail", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return st
}

func wc(args []string) int {
	opts, rest := flags(args, "")
	var l, w, c int
	st := lines("wc", rest, func(_, line string) {
		l++
		w += len(strings.Fields(line))
		c += len(line) + 1
	})
	name := ""
	if len(rest) == 1 && rest[0] != "-" {
		name = " " + rest[0] // busybox: "N FILE" for a file operand
	}
	switch {
	case has(opts, 'l'):
		fmt.Printf("%d%s\n", l, name)
	case has(opts, 'w'):
		fmt.Printf("%d%s\n", w, name)
	case has(opts, 'c'):
		fmt.Printf("%d%s\n", c, name)
	default:
		fmt.Printf("%7d %7d %7d%s\n", l, w, c, name)
	}
	return st
}

func sortCmd(args []string) int {
	opts, rest := flags(args, "")
	var all []string
	st := lines("sort", rest, func(_, line string) { all = append(all, line) })
	if has(opts, 'n') {
		sort.SliceStable(all, func(i, j int) bool {
			a, _ := strconv.ParseFloat(strings.TrimSpace(all[i]), 64)
			b, _ := strconv.ParseFloat(strings.TrimSpace(all[j]), 64)
			return a < b
		})
	} else {
		sort.Strings(all)
	}
	if has(opts, 'r') {
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
	}
	prev := "\x00"
	for _, l := range all {
		if has(opts, 'u') && l == prev {
			continue
		}
		prev = l
		fmt.Println(l)
	}
	return st
}

func tee(args []string) int {
	opts, files := flags(args, "")
	ws := []io.Writer{os.Stdout}
	for _, f := range files {
		flag := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
		if has(opts, 'a') {
			flag = os.O_CREATE | os.O_WRONLY | os.O_APPEND
		}
		fh, err := os.OpenFile(f, flag, 0o666)
		if err != nil {
			return fail("tee", err)
		}
		defer fh.Close()
		ws = append(ws, fh)
	}
	if _, err := io.Copy(io.MultiWriter(ws...), os.Stdin); err != nil {
		return fail("tee", err)
	}
	return 0
}

// cut supports -d DELIM -f N[,M] and -c N-M.
func cut(args []string) int {
	opts, rest := flags(args, "dfc")
	delim := "\t"
	if d, ok := opts['d']; ok {
		delim = d
	}
	fields := map[int]bool{}
	for _, f := range strings.Split(opts['f'], ",") {
		if n, err := strconv.Atoi(f); err == nil {
			fields[n] = true
		}
	}
	return lines("cut", rest, func(_, line string) {
		if c, ok := opts['c']; ok {
			a, b, _ := strings.Cut(c, "-")
			from, _ := strconv.Atoi(a)
			to, err := strconv.Atoi(b)
			if err != nil || to > len(line) {
				to = len(line)
			}
			if from < 1 {
				from = 1
			}
			if from <= to {
				fmt.Println(line[from-1 : to])
			} else {
				fmt.Println()
			}
			return
		}
		var out []string
		for i, f := range strings.Split(line, delim) {
			if fields[i+1] {
				out = append(out, f)
			}
		}
		fmt.Println(strings.Join(out, delim))
	})
}

// tr supports -d SET and SET1 SET2 (single characters, no ranges).
func tr(args []string) int {
	opts, rest := flags(args, "")
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return fail("tr", err)
	}
	s := string(in)
	switch {
	case has(opts, 'd') && len(rest) == 1:
		for _, c := range rest[0] {
			s = strings.ReplaceAll(s, string(c), "")
		}
	case len(rest) == 2:
		from, to := []rune(rest[0]), []rune(rest[1])
		s = strings.Map(func(r rune) rune {
			for i, f := range from {
				if f == r {
					return to[min(i, len(to)-1)]
				}
			}
			return r
		}, s)
	}
	fmt.Print(s)
	return 0
}

func md5sum(args []string) int {
	_, files := flags(args, "")
	if len(files) == 0 {
		files = []string{"-"}
	}
	for _, f := range files {
		r, err := open(f)
		if err != nil {
			return fail("md5sum", err)
		}
		h := md5.New()
		io.Copy(h, r)
		r.Close()
		fmt.Printf("%x  %s\n", h.Sum(nil), f)
	}
	return 0
}

// hexdump -C FILE... prints the canonical hex+ASCII dump (encoding/hex's
// Dump is that format) and the final offset.
func hexdump(args []string) int {
	_, files := flags(args, "")
	if len(files) == 0 {
		files = []string{"-"}
	}
	var data []byte
	for _, f := range files {
		r, err := open(f)
		if err != nil {
			return fail("hexdump", err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return fail("hexdump", err)
		}
		data = append(data, b...)
	}
	fmt.Print(hex.Dump(data))
	fmt.Printf("%08x\n", len(data))
	return 0
}
