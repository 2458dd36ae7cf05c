package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestReadDir: *.yaml regular files and links to them are read; hidden,
// other extensions, directories and ignored names are not; an unreadable
// file and a dangling link are present with their error (so they are not
// taken for removed and their objects stay).
func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	elsewhere := filepath.Join(t.TempDir(), "linked.yaml")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{
		"a.yaml": "a", ".a.yaml-123": "tmp", "b.yml": "yml", "c.yaml.skip": "", "coredns.yaml": "ignored", "notes.txt": "x",
	} {
		must(os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600))
	}
	must(os.WriteFile(elsewhere, []byte("linked"), 0o600))
	must(os.Symlink(elsewhere, filepath.Join(dir, "link.yaml")))
	must(os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, "dangling.yaml")))
	must(os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "locked.yaml"), []byte("x"), 0o000))

	d := &Deployer{Dir: dir, Ignore: func(f string) bool { return f == "coredns.yaml" }}
	files, err := d.readDir()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"a.yaml", "dangling.yaml", "link.yaml", "locked.yaml"}
	if !slices.Equal(names, want) {
		t.Fatalf("files = %v, want %v", names, want)
	}
	if string(files["link.yaml"].data) != "linked" || string(files["a.yaml"].data) != "a" {
		t.Fatalf("contents: %q %q", files["link.yaml"].data, files["a.yaml"].data)
	}
	if files["dangling.yaml"].err == nil {
		t.Fatal("a dangling link has no error")
	}
	if os.Geteuid() != 0 && files["locked.yaml"].err == nil {
		t.Fatal("an unreadable file has no error")
	}
	if time.Since(files["a.yaml"].modTime) > time.Minute {
		t.Fatalf("modTime = %v", files["a.yaml"].modTime)
	}
	if files["a.yaml"].checksum == files["link.yaml"].checksum {
		t.Fatal("different contents share a checksum")
	}
}
