package token

import (
	"strings"
	"testing"
	"time"

	"github.com/kedge/kedge/server/token/bootstrap"
)

func TestWriteTable(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	later, earlier := now.Add(90*time.Minute), now.Add(-time.Minute)
	var b strings.Builder
	err := writeTable(&b, []bootstrap.Info{
		{ID: "aaaaaa", Expires: &later, Description: "site 7", Usages: []string{"signing", "authentication"}, Groups: []string{"system:bootstrappers:edge"}},
		{ID: "bbbbbb", Expires: &earlier, Expired: true, Usages: []string{"authentication"}},
		{ID: "cccccc", Usages: []string{}},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := [][]string{
		{"ID", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA", "GROUPS"},
		{"aaaaaa", "1h30m0s", "2026-12-06T11:30:00Z", "signing,authentication", "site", "7", "system:bootstrappers:edge"},
		{"bbbbbb", "<expired>", "2026-12-06T09:59:00Z", "authentication", "-", "-"},
		{"cccccc", "<forever>", "<never>", "-", "-", "-"},
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", b.String())
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("row %d = %q, want %q", i, got, w)
		}
	}
}
