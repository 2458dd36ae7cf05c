package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kedge/kedge/scripts/imagebuild/ociimage"
)

// builder reads the binaries and files images are made of; the first
// error is kept in err (checked after each image).
type builder struct {
	bin, kube string
	err       error
	applets   []string
}

// file is the file at src (relative to --bin; "../kube/..." is relative
// to --kube) placed at dst with mode.
func (b *builder) file(dst, src string, mode int64) ociimage.File {
	p := filepath.Join(b.bin, src)
	if rest, ok := strings.CutPrefix(src, filepath.Join("..", "kube")+"/"); ok {
		p = filepath.Join(b.kube, rest)
	}
	data, err := os.ReadFile(p)
	if err != nil && b.err == nil {
		b.err = err
	}
	return ociimage.File{Path: dst, Data: data, Mode: mode}
}

// toolbox is a small root filesystem: /bin/e2etools with one symlink per
// applet in /bin (and /usr/bin/env), /etc/passwd and /etc/group with root,
// nobody and upstream agnhost's user-defined-in-image (1000, group 50000),
// and /tmp, /root, /var, /usr/bin.
func (b *builder) toolbox() []ociimage.File {
	files := []ociimage.File{
		{Path: "bin", Dir: true},
		b.file("bin/e2etools", "e2etools", 0o755),
	}
	for _, n := range b.appletNames() {
		files = append(files, ociimage.File{Path: "bin/" + n, Link: "e2etools"})
	}
	return append(files,
		ociimage.File{Path: "usr", Dir: true}, ociimage.File{Path: "usr/bin", Dir: true},
		ociimage.File{Path: "usr/bin/env", Link: "/bin/e2etools"},
		ociimage.File{Path: "etc", Dir: true},
		ociimage.File{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nuser-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n")},
		ociimage.File{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n")},
		ociimage.File{Path: "tmp", Dir: true, Mode: 0o1777}, ociimage.File{Path: "root", Dir: true, Mode: 0o700},
		ociimage.File{Path: "var", Dir: true}, ociimage.File{Path: "home", Dir: true},
	)
}

// appletNames asks the built e2etools for its applets (once).
func (b *builder) appletNames() []string {
	if b.applets == nil {
		out, err := exec.Command(filepath.Join(b.bin, "e2etools"), "--list").Output()
		if err != nil && b.err == nil {
			b.err = fmt.Errorf("e2etools --list: %w", err)
		}
		b.applets = strings.Fields(string(out))
	}
	return b.applets
}
