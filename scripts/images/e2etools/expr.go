package main

// The two little languages: expr and awk.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

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
