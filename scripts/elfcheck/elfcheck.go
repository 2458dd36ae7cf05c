// Package elfcheck tells whether a program runs on a given device
// architecture without a C library: kedge's release binaries and the
// programs they carry must be static ELF executables for their target.
package elfcheck

import (
	"debug/elf"
	"fmt"
)

// machines maps the release architectures to ELF machine types.
var machines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
	"armv7": elf.EM_ARM,
}

// Static returns nil when path is an ELF executable for arch (amd64, arm64
// or armv7) that asks for no dynamic loader (no PT_INTERP) and no shared
// library (no DT_NEEDED), else an error saying what it is.
func Static(path, arch string) error {
	want, ok := machines[arch]
	if !ok {
		return fmt.Errorf("unknown architecture %q (amd64, arm64 or armv7)", arch)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("%s: built for %s, not %s", path, f.Machine, arch)
	}
	if arch == "armv7" && f.Class != elf.ELFCLASS32 {
		return fmt.Errorf("%s: %s, not 32-bit", path, f.Class)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: dynamically linked (asks for a program interpreter)", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s: needs shared libraries %v", path, libs)
	}
	return nil
}
