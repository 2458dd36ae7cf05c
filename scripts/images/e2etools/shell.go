package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// runShell is sh -c SCRIPT [NAME ARGS...], sh FILE [ARGS...] or sh reading
// the script from stdin. Exit statuses and signals of commands are kept.
func runShell(args []string) int {
	var src, name string
	var params []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-c" {
		args = args[1:] // -e, -x, -l ...: accepted, ignored
	}
	switch {
	case len(args) > 0 && args[0] == "-c":
		if len(args) < 2 {
			return fail("sh", errors.New("-c requires an argument"))
		}
		src, name = args[1], "sh"
		if len(args) > 2 {
			name, params = args[2], args[3:]
		}
	case len(args) > 0:
		b, err := os.ReadFile(args[0])
		if err != nil {
			return fail("sh", err)
		}
		src, name, params = string(b), args[0], args[1:]
	default:
		b, err := readAll(os.Stdin)
		if err != nil {
			return fail("sh", err)
		}
		src = string(b)
	}
	file, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), name)
	if err != nil {
		return fail("sh", err)
	}
	r, err := interp.New(interp.StdIO(os.Stdin, os.Stdout, os.Stderr), interp.Env(expand.ListEnviron(os.Environ()...)),
		interp.Params(append([]string{"--"}, params...)...))
	if err != nil {
		return fail("sh", err)
	}
	err = r.Run(context.Background(), file)
	var st interp.ExitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &st):
		return int(st)
	default:
		fmt.Fprintln(os.Stderr, "sh:", err)
		return 1
	}
}
