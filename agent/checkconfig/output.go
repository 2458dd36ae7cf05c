package checkconfig

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText prints the report grouped, one line per item ("ok", "warn",
// "MISSING", name, detail) with the hint on the next line, then a summary.
func WriteText(w io.Writer, rep Report) error {
	var b strings.Builder
	src := "no kernel config found; features probed from /proc, /sys and /lib/modules"
	if rep.ConfigSource != "" {
		src = "kernel config " + rep.ConfigSource
	}
	fmt.Fprintf(&b, "kedge check-config: kernel %s, %s\n", rep.Kernel, src)
	fmt.Fprintf(&b, "(nothing is loaded or changed; oom_score_adj is lowered by one and restored)\n")
	group := ""
	for _, r := range rep.Results {
		if r.Group != group {
			group = r.Group
			fmt.Fprintf(&b, "\n%s\n", group)
		}
		fmt.Fprintf(&b, "  %-7s  %-22s %s\n", r.Status, r.Name, r.Detail)
		if r.Hint != "" {
			fmt.Fprintf(&b, "  %-7s  %-22s -> %s\n", "", "", r.Hint)
		}
	}
	fmt.Fprintf(&b, "\n%s\n", rep.Summary())
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary is one line: the counts and whether kedge can run here.
func (r Report) Summary() string {
	missing, warn := r.Count(Missing), r.Count(Warn)
	s := fmt.Sprintf("%d ok, %d warnings, %d missing: ", r.Count(OK), warn, missing)
	if missing > 0 {
		return s + "kedge cannot run on this machine until the MISSING items are fixed"
	}
	if warn > 0 {
		return s + "kedge can run on this machine (see the warnings)"
	}
	return s + "kedge can run on this machine"
}

// WriteJSON prints the report as one JSON object, with "ok" false when a
// required item is missing.
func WriteJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Report
		OK      bool   `json:"ok"`
		Summary string `json:"summary"`
	}{rep, rep.Count(Missing) == 0, rep.Summary()})
}
