package kubeflags

import (
	"slices"
	"testing"
)

func TestRender(t *testing.T) {
	got := Render(map[string]string{"b": "1", "a": "2"}, []string{"--b=3", "c=x=y", "-d="})
	want := []string{"--a=2", "--b=3", "--c=x=y", "--d="}
	if !slices.Equal(got, want) {
		t.Fatalf("Render = %v, want %v", got, want)
	}
}
