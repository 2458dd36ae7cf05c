// Command imagebuild packages one static binary as a single-layer container
// image and writes it as an image tarball that containerd imports
// (`kedge ctr images import`, or <data-dir>/agent/images/).
//
//	imagebuild --binary bin/pause --ref registry.k8s.io/pause:3.10.2 --out bin/images/pause.tar
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kedge/kedge/scripts/imagebuild/ociimage"
)

func main() {
	binary := flag.String("binary", "", "static binary to package")
	ref := flag.String("ref", "", "image reference to tag it with")
	out := flag.String("out", "", "tarball to write")
	arch := flag.String("arch", "", "architecture (default: this machine's)")
	flag.Parse()
	if *binary == "" || *ref == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "imagebuild: --binary, --ref and --out are required")
		os.Exit(2)
	}
	if err := ociimage.WriteTarball(*binary, *ref, *arch, *out); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}
