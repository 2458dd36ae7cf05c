package procmem

import (
	"cmp"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ExecutablePages is where a process's resident pages of its own Go
// executable lie: per ELF section, and, for the code, per package (the
// first depth elements of its import path), in kB.
type ExecutablePages struct {
	Sections map[string]int64
	Packages map[string]int64
}

const pageSize = 4096

// Executable reads which pages of exe, mapped by process pid at its link
// addresses (a non-PIE executable, as kedge builds), are resident in that
// process (/proc/PID/pagemap; needs root) and attributes them to sections
// and, through the executable's pclntab (present in a stripped binary
// too), to the packages whose functions occupy them.
func Executable(pid int, exe string, depth int) (ExecutablePages, error) {
	out := ExecutablePages{Sections: map[string]int64{}, Packages: map[string]int64{}}
	f, err := elf.Open(exe)
	if err != nil {
		return out, err
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC {
		return out, fmt.Errorf("%s: not linked at fixed addresses (ELF type %s)", exe, f.Type)
	}
	pm, err := os.Open("/proc/" + strconv.Itoa(pid) + "/pagemap")
	if err != nil {
		return out, err
	}
	defer pm.Close()
	resident := map[uint64]bool{} // page address -> present
	present := func(page uint64) (bool, error) {
		if v, ok := resident[page]; ok {
			return v, nil
		}
		var b [8]byte
		if _, err := pm.ReadAt(b[:], int64(page/pageSize*8)); err != nil && err != io.EOF {
			return false, fmt.Errorf("pagemap at %#x: %w", page, err)
		}
		v := binary.LittleEndian.Uint64(b[:])&(1<<63) != 0
		resident[page] = v
		return v, nil
	}
	for _, s := range f.Sections {
		if s.Addr == 0 || s.Flags&elf.SHF_ALLOC == 0 || s.Type == elf.SHT_NOBITS {
			continue
		}
		for page := s.Addr &^ (pageSize - 1); page < s.Addr+s.Size; page += pageSize {
			ok, err := present(page)
			if err != nil {
				return out, err
			}
			if ok { // a page two sections share counts for both
				out.Sections[s.Name] += pageSize / 1024
			}
		}
	}
	text, pcln := f.Section(".text"), f.Section(".gopclntab")
	if text == nil || pcln == nil {
		return out, fmt.Errorf("%s: no .text or .gopclntab", exe)
	}
	data, err := pcln.Data()
	if err != nil {
		return out, err
	}
	table, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return out, fmt.Errorf("%s: pclntab: %w", exe, err)
	}
	for _, fn := range table.Funcs {
		// Bytes of the function on resident pages.
		for page := fn.Entry &^ (pageSize - 1); page < fn.End; page += pageSize {
			ok, err := present(page)
			if err != nil {
				return out, err
			}
			if ok {
				lo, hi := max(page, fn.Entry), min(page+pageSize, fn.End)
				out.Packages[packagePrefix(fn.PackageName(), depth)] += int64(hi - lo)
			}
		}
	}
	for k, v := range out.Packages {
		out.Packages[k] = v / 1024
	}
	return out, nil
}

// packagePrefix is the first depth elements of an import path (of a
// domain-style path; one element for the standard library).
func packagePrefix(pkg string, depth int) string {
	parts := strings.Split(pkg, "/")
	if !strings.Contains(parts[0], ".") {
		return parts[0]
	}
	return strings.Join(parts[:min(len(parts), depth)], "/")
}

// Top is the n largest entries of m, "key kB" a line, largest first.
func Top(m map[string]int64, n int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	var sb strings.Builder
	for _, k := range keys[:min(n, len(keys))] {
		fmt.Fprintf(&sb, "%8d kB  %s\n", m[k], k)
	}
	return sb.String()
}
