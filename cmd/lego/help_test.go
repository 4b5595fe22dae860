package main

import (
	"os"
	"strings"
	"testing"
)

// TestHelp: lego help prints the rule reference, one rule, and a clear
// error for an unknown one; the bare command still prints the usage.
func TestHelp(t *testing.T) {
	dir := t.TempDir() // no workspace: help needs none
	r := lego(t, dir, "help", "rules")
	if r.code != 0 || !strings.Contains(r.stdout, "\nsft_checkpoint(name, base_model, dataset, ...)\n") || !strings.Contains(r.stdout, "Other built-ins") {
		t.Fatalf("help rules: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = lego(t, dir, "help", "sft_checkpoint")
	if r.code != 0 || !strings.Contains(r.stdout, `"llamafactory"`) || strings.Contains(r.stdout, "verifier_eval") {
		t.Fatalf("help sft_checkpoint: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = lego(t, dir, "help", "rules", "--markdown")
	want, err := os.ReadFile("../../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || r.stdout != string(want) {
		t.Errorf("help rules --markdown: exit %d, output differs from docs/rules.md", r.code)
	}
	r = lego(t, dir, "help", "sft_chekpoint")
	if r.code != 2 || !strings.Contains(r.stderr, "did you mean sft_checkpoint?") || !strings.Contains(r.stderr, "genrule") {
		t.Errorf("help sft_chekpoint: exit %d, stderr %q", r.code, r.stderr)
	}
	if r = lego(t, dir); r.code != 2 || !strings.Contains(r.stderr, "help rules|RULE") {
		t.Errorf("lego: exit %d, stderr %q", r.code, r.stderr)
	}
}
