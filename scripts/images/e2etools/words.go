package main

// Tools that print or test their arguments: echo, printf, test, env, date, seq, yes, basename, dirname.

import (
	"bufio"
	"fmt"
	"os"
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
