// Command packbundle packs a directory into the zstd-compressed tarball that
// agent/bundle embeds: packbundle [-arch ARCH] DIR OUT. With -arch, every
// file must be a static executable for ARCH (amd64, arm64 or armv7), so a
// kedge binary never carries a runc it cannot run.
package main

import (
	"archive/tar"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"

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
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
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
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}
