// Command images writes, as image tarballs for <data-dir>/agent/images/,
// every image the upstream [Conformance] specs run, tagged with the exact
// names e2e.test (k8s.io/kubernetes/test/utils/image at the go.mod version)
// asks for, so that no node pulls anything.
//
//	images --bin DIR --kube DIR --out DIR
//
// --bin holds the static binaries scripts/conformance built: agnhost,
// sample-apiserver, etcd, nnp (upstream sources) and e2etools, pause (ours);
// --kube is the k8s.io/kubernetes module directory (for kitten/nautilus
// content). Images that upstream builds on a distribution get e2etools, a
// Go multi-call stand-in for the tools they carry (see stand-ins below and
// README "Conformance").
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	imageutils "k8s.io/kubernetes/test/utils/image"

	"github.com/kedge/kedge/scripts/imagebuild/ociimage"
)

// path is PATH in every image, as in the upstream bases.
const path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// image is one image to build: its upstream ID, what goes into it and
// what it runs. standIn says what replaces upstream's distribution base.
type image struct {
	id      imageutils.ImageID
	files   func(b *builder) []ociimage.File
	cfg     ociimage.Config
	standIn string
}

func main() {
	bin := flag.String("bin", "", "directory of the static binaries")
	kube := flag.String("kube", "", "k8s.io/kubernetes module directory")
	out := flag.String("out", "", "directory for the tarballs")
	list := flag.Bool("list", false, "print the images and their stand-ins, build nothing")
	flag.Parse()
	if !*list && (*bin == "" || *kube == "" || *out == "") {
		fmt.Fprintln(os.Stderr, "images: --bin, --kube and --out are required")
		os.Exit(2)
	}
	b := &builder{bin: *bin, kube: *kube}
	for _, im := range Images() {
		ref := imageutils.GetE2EImage(im.id)
		if *list {
			fmt.Printf("%s\t%s\n", ref, im.standIn)
			continue
		}
		img, err := ociimage.Files(im.files(b), im.cfg, "")
		if err == nil {
			name := strings.NewReplacer("/", "_", ":", "_").Replace(ref)
			err = ociimage.WriteImage(img, filepath.Join(*out, name+".tar"), ref)
		}
		if err == nil {
			err = b.err
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "images: %s: %v\n", ref, err)
			os.Exit(1)
		}
		fmt.Println(ref)
	}
}

// Images is the list of images built, in order.
func Images() []image {
	agnhost := func(version string) func(b *builder) []ociimage.File {
		return func(b *builder) []ociimage.File {
			// porter serves TLS with the certificate upstream adds to the image's /.
			porter := filepath.Join("..", "kube", "test/images/agnhost/porter")
			return append(b.toolbox(), b.file("agnhost", "agnhost", 0o755), ociimage.File{Path: "agnhost-2", Link: "agnhost"},
				b.file("localhost.crt", filepath.Join(porter, "localhost.crt"), 0o644), b.file("localhost.key", filepath.Join(porter, "localhost.key"), 0o644),
				ociimage.File{Path: "uploads", Dir: true}, ociimage.File{Path: "VERSION", Data: []byte(version + "\n"), Mode: 0o644})
		}
	}
	agnhostCfg := ociimage.Config{Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}, Env: []string{path},
		Ports: []string{"80/tcp", "8080/tcp", "8081/tcp", "9376/tcp", "5000/tcp"}}
	busybox := ociimage.Config{Cmd: []string{"sh"}, Env: []string{path}}
	nginx := func(b *builder) []ociimage.File {
		return append(b.toolbox(), ociimage.File{Path: "usr/share/nginx/html", Dir: true},
			ociimage.File{Path: "usr/share/nginx/html/index.html", Mode: 0o644, Data: []byte(nginxIndex)})
	}
	nginxCfg := ociimage.Config{Cmd: []string{"nginx", "-g", "daemon off;"}, Env: []string{path}, Ports: []string{"80/tcp"}}
	web := func(name string) func(b *builder) []ociimage.File {
		return func(b *builder) []ociimage.File {
			files := agnhost("kitten")(b)
			return append(files, b.file("kitten.jpg", filepath.Join("..", "kube", "test/images", name, "html", name+".jpg"), 0o644),
				b.file("data.json", filepath.Join("..", "kube", "test/images", name, "html", "data.json"), 0o644))
		}
	}
	webCfg := agnhostCfg
	webCfg.Cmd = []string{"test-webserver"}
	toolbox := "e2etools (Go multi-call: sh, coreutils subset, wget, nc, dig, getent, nslookup) instead of busybox/alpine"
	return []image{
		{id: imageutils.Agnhost, files: agnhost("2.66.1"), cfg: agnhostCfg, standIn: "agnhost from source; " + toolbox},
		{id: imageutils.AgnhostPrev, files: agnhost("2.55"), cfg: agnhostCfg, standIn: "agnhost at the go.mod version (not 2.55); " + toolbox},
		{id: imageutils.BusyBox, files: (*builder).toolbox, cfg: busybox, standIn: toolbox},
		{id: imageutils.GlibcDnsTesting, files: (*builder).toolbox, cfg: busybox, standIn: toolbox + " (Go's resolver, not glibc's)"},
		{id: imageutils.Nginx, files: nginx, cfg: nginxCfg, standIn: "e2etools nginx (a static file server on :80) instead of nginx"},
		{id: imageutils.NginxNew, files: nginx, cfg: nginxCfg, standIn: "e2etools nginx (a static file server on :80) instead of nginx"},
		{id: imageutils.NonRoot, files: (*builder).toolbox, cfg: ociimage.Config{Cmd: []string{"sh"}, Env: []string{path}, User: "1234"}, standIn: toolbox + ", USER 1234"},
		{id: imageutils.Nonewprivs, files: func(b *builder) []ociimage.File {
			return append(b.toolbox(), ociimage.File{Path: "usr/local/bin", Dir: true}, b.file("usr/local/bin/nnp", "nnp", 0o4755))
		}, cfg: ociimage.Config{Cmd: []string{"nnp"}, Env: []string{path}}, standIn: "nnp from source (setuid); " + toolbox},
		{id: imageutils.Kitten, files: web("kitten"), cfg: webCfg, standIn: "agnhost test-webserver with upstream's html; " + toolbox},
		{id: imageutils.Nautilus, files: web("nautilus"), cfg: webCfg, standIn: "agnhost test-webserver with upstream's html; " + toolbox},
		{id: imageutils.APIServer, files: func(b *builder) []ociimage.File {
			return []ociimage.File{b.file("sample-apiserver", "sample-apiserver", 0o755)}
		}, cfg: ociimage.Config{Entrypoint: []string{"/sample-apiserver"}}, standIn: "k8s.io/sample-apiserver at the go.mod version (not 1.29.2)"},
		{id: imageutils.Etcd, files: func(b *builder) []ociimage.File {
			return append(b.toolbox(), ociimage.File{Path: "usr/local/bin", Dir: true}, b.file("usr/local/bin/etcd", "etcd", 0o755))
		}, cfg: ociimage.Config{Cmd: []string{"/usr/local/bin/etcd"}, Env: []string{path}}, standIn: "etcd server at the go.mod version; " + toolbox},
		{id: imageutils.Pause, files: func(b *builder) []ociimage.File {
			return []ociimage.File{b.file("pause", "pause", 0o755)}
		}, cfg: ociimage.Config{Entrypoint: []string{"/pause"}}, standIn: "kedge's pause (scripts/images/pause)"},
	}
}

const nginxIndex = `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
</body>
</html>
`
