// Command packbundle packs a directory into the zstd-compressed tarball that
// agent/runtime/bundle embeds: packbundle [-arch ARCH] DIR OUT. It compresses with
// the zstd command at level 19 with a 32 MiB window (--long=25): a third
// smaller than the Go encoder's best level (14.4 vs 21.0 MB for amd64), and
// the bytes stay incompressible in the release .xz, so this is the download
// size too. Unpacking (agent/runtime/bundle) needs that much memory once. With -arch, every
// file must be a static executable for ARCH (amd64, arm64 or armv7), so a
// kedge binary never carries a runc it cannot run.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/kedge/kedge/scripts/elfcheck"
)

func main() {
	arch := flag.String("arch", "", "check that every file is a static executable for this architecture")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: packbundle [-arch ARCH] DIR OUT")
		os.Exit(2)
	}
	if err := pack(flag.Arg(0), flag.Arg(1), *arch); err != nil {
		fmt.Fprintln(os.Stderr, "packbundle:", err)
		os.Exit(1)
	}
}

func pack(dir, out, arch string) error {
	if arch != "" {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			return elfcheck.Static(path, arch)
		})
		if err != nil {
			return err
		}
	}
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(info.Mode().Perm()), ModTime: time.Unix(0, 0)}
		if d.IsDir() {
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
			return tw.WriteHeader(hdr)
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	zstd := exec.Command("zstd", "-q", "-f", "-19", "--long=25", "-o", out)
	zstd.Stdin, zstd.Stdout, zstd.Stderr = &archive, os.Stderr, os.Stderr
	if err := zstd.Run(); err != nil {
		return fmt.Errorf("zstd: %w (install it with: apt-get install -y zstd)", err)
	}
	return nil
}
