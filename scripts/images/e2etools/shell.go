package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
		b, err := io.ReadAll(os.Stdin)
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
		interp.Params(append([]string{"--"}, params...)...), interp.OpenHandler(busyboxOpen))
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

// busyboxOpen opens redirection targets as the interpreter does and words
// a failure as busybox sh: "/bin/sh: can't create /file: Read-only file
// system" (a spec compares the whole line).
func busyboxOpen(ctx context.Context, path string, flag int, perm os.FileMode) (io.ReadWriteCloser, error) {
	f, err := interp.DefaultOpenHandler()(ctx, path, flag, perm)
	var pe *os.PathError
	if errors.As(err, &pe) {
		op := "can't open"
		if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
			op = "can't create"
		}
		return nil, &os.PathError{Op: "/bin/sh: " + op, Path: pe.Path, Err: strerror(pe.Err)}
	}
	return f, err
}

// strerror is err's message as C's strerror words it (capitalised).
func strerror(err error) error {
	msg := err.Error()
	if msg == "" {
		return err
	}
	return errors.New(strings.ToUpper(msg[:1]) + msg[1:])
}
