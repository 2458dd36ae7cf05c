package main

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

	"mvdan.cc/sh/v3/syntax"
)

func echo(args []string) int {
	newline := true
	for len(args) > 0 && (args[0] == "-n" || args[0] == "-e") {
		if args[0] == "-n" {
			newline = false
		}
		args = args[1:]
	}
	fmt.Print(strings.Join(args, " "))
	if newline {
		fmt.Println()
	}
	return 0
}

func printfCmd(args []string) int {
	if len(args) == 0 {
		return fail("printf", fmt.Errorf("missing format"))
	}
	format := strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\\`, `\`).Replace(args[0])
	var vals []any
	for _, a := range args[1:] {
		vals = append(vals, a)
	}
	format = strings.NewReplacer("%d", "%v", "%i", "%v").Replace(format)
	fmt.Printf(format, vals...)
	return 0
}

// testCmd evaluates test/[ expressions with the shell's own implementation.
func testCmd(args []string) int {
	if len(args) > 0 && args[len(args)-1] == "]" {
		args = args[:len(args)-1]
	}
	var q []string
	for _, a := range args {
		s, _ := syntax.Quote(a, syntax.LangBash)
		q = append(q, s)
	}
	return runShell([]string{"-c", "test " + strings.Join(q, " ")})
}

func quoteAll(args []string) string {
	var q []string
	for _, a := range args {
		s, err := syntax.Quote(a, syntax.LangBash)
		if err != nil {
			s = "''"
		}
		q = append(q, s)
	}
	return strings.Join(q, " ")
}

func env(args []string) int {
	i := 0
	for ; i < len(args) && strings.Contains(args[i], "="); i++ {
		k, v, _ := strings.Cut(args[i], "=")
		os.Setenv(k, v)
	}
	if i < len(args) {
		return runShell([]string{"-c", "exec " + quoteAll(args[i:])})
	}
	for _, e := range os.Environ() {
		fmt.Println(e)
	}
	return 0
}

func date(args []string) int {
	now := time.Now()
	for _, a := range args {
		switch a {
		case "-u":
			now = now.UTC()
		case "+%s":
			fmt.Println(now.Unix())
			return 0
		}
	}
	fmt.Println(now.Format("Mon Jan _2 15:04:05 MST 2006"))
	return 0
}

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

func seq(args []string) int {
	first, last := 1, 0
	switch len(args) {
	case 1:
		last, _ = strconv.Atoi(args[0])
	case 2, 3:
		first, _ = strconv.Atoi(args[0])
		last, _ = strconv.Atoi(args[len(args)-1])
	default:
		return fail("seq", fmt.Errorf("want [FIRST] LAST"))
	}
	for i := first; i <= last; i++ {
		fmt.Println(i)
	}
	return 0
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

func basename(args []string) int {
	if len(args) == 0 {
		return fail("basename", fmt.Errorf("missing operand"))
	}
	b := args[0]
	for len(b) > 1 && strings.HasSuffix(b, "/") {
		b = b[:len(b)-1]
	}
	if i := strings.LastIndex(b, "/"); i >= 0 && len(b) > 1 {
		b = b[i+1:]
	}
	if len(args) > 1 {
		b = strings.TrimSuffix(b, args[1])
	}
	fmt.Println(b)
	return 0
}

func dirname(args []string) int {
	if len(args) == 0 {
		return fail("dirname", fmt.Errorf("missing operand"))
	}
	d := args[0]
	if i := strings.LastIndex(strings.TrimRight(d, "/"), "/"); i > 0 {
		d = d[:i]
	} else if i == 0 {
		d = "/"
	} else {
		d = "."
	}
	fmt.Println(d)
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

func yes(args []string) int {
	s := "y"
	if len(args) > 0 {
		s = strings.Join(args, " ")
	}
	w := bufio.NewWriter(os.Stdout)
	for {
		if _, err := w.WriteString(s + "\n"); err != nil {
			return 0
		}
	}
}

// expr evaluates ARG OP ARG with integer + - * / % and the comparisons
// = != < <= > >= (numeric when both sides are numbers), or "length S";
// it prints the result and exits 1 when it is 0 or empty, as expr does.
func expr(args []string) int {
	var out string
	switch {
	case len(args) == 1:
		out = args[0]
	case len(args) == 2 && args[0] == "length":
		out = strconv.Itoa(len(args[1]))
	case len(args) == 3:
		a, op, b := args[0], args[1], args[2]
		x, errA := strconv.ParseInt(a, 10, 64)
		y, errB := strconv.ParseInt(b, 10, 64)
		numeric := errA == nil && errB == nil
		cmp := strings.Compare(a, b)
		if numeric {
			cmp = 0
			if x < y {
				cmp = -1
			} else if x > y {
				cmp = 1
			}
		}
		truth := func(v bool) string {
			if v {
				return "1"
			}
			return "0"
		}
		switch op {
		case "+", "-", "*", "/", "%":
			if !numeric {
				fmt.Fprintln(os.Stderr, "expr: non-integer argument")
				return 2
			}
			if (op == "/" || op == "%") && y == 0 {
				fmt.Fprintln(os.Stderr, "expr: division by zero")
				return 2
			}
			out = strconv.FormatInt(map[string]func() int64{"+": func() int64 { return x + y }, "-": func() int64 { return x - y },
				"*": func() int64 { return x * y }, "/": func() int64 { return x / y }, "%": func() int64 { return x % y }}[op](), 10)
		case "=", "==":
			out = truth(cmp == 0)
		case "!=":
			out = truth(cmp != 0)
		case "<":
			out = truth(cmp < 0)
		case "<=":
			out = truth(cmp <= 0)
		case ">":
			out = truth(cmp > 0)
		case ">=":
			out = truth(cmp >= 0)
		default:
			fmt.Fprintf(os.Stderr, "expr: unsupported operator %q\n", op)
			return 2
		}
	default:
		fmt.Fprintln(os.Stderr, "expr: only ARG OP ARG and length STRING")
		return 2
	}
	fmt.Println(out)
	if out == "0" || out == "" {
		return 1
	}
	return 0
}

// awk runs the one-statement programs the specs use: [-F SEP]
// '{print $N[, $M...]}' (also $0 and NF) over the files or stdin.
func awk(args []string) int {
	opts, rest := flags(args, "F")
	if len(rest) == 0 {
		return fail("awk", fmt.Errorf("missing program"))
	}
	prog := strings.TrimSpace(rest[0])
	body, ok := strings.CutPrefix(prog, "{")
	body, ok2 := strings.CutSuffix(strings.TrimSpace(body), "}")
	body, ok3 := strings.CutPrefix(strings.TrimSpace(body), "print")
	if !ok || !ok2 || !ok3 {
		return fail("awk", fmt.Errorf("only '{print $N, ...}' programs: %q", prog))
	}
	var fieldsWanted []string
	for _, f := range strings.Split(body, ",") {
		if f = strings.TrimSpace(f); f != "" {
			fieldsWanted = append(fieldsWanted, f)
		}
	}
	sep, custom := opts['F']
	return lines("awk", rest[1:], func(_, line string) {
		var fields []string
		if custom {
			fields = strings.Split(line, sep)
		} else {
			fields = strings.Fields(line)
		}
		var out []string
		for _, f := range fieldsWanted {
			switch {
			case f == "$0":
				out = append(out, line)
			case f == "NF":
				out = append(out, strconv.Itoa(len(fields)))
			case strings.HasPrefix(f, "$"):
				n, err := strconv.Atoi(f[1:])
				if err == nil && n >= 1 && n <= len(fields) {
					out = append(out, fields[n-1])
				} else {
					out = append(out, "")
				}
			default:
				out = append(out, strings.Trim(f, `"`))
			}
		}
		if len(fieldsWanted) == 0 {
			out = []string{line}
		}
		fmt.Println(strings.Join(out, " "))
	})
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
