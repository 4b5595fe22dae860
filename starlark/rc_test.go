package starlark

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// rcText renders lines as "Command Args @line" for comparison.
func rcText(lines []RCLine) []string {
	var out []string
	for _, l := range lines {
		out = append(out, fmt.Sprintf("%s %s @%s:%d", l.Command, strings.Join(l.Args, " "), filepath.Base(l.File), l.Line))
	}
	return out
}

func TestRCLines(t *testing.T) {
	home, ws := t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(home, ".legorc"), "build --jobs=2\n")
	write(filepath.Join(ws, WorkspaceFileName), "")
	write(filepath.Join(ws, ".legorc"), `# comment
repro --report_json=r.json
build --keep_going
  common --cache_dir /c   
build:opt --define=x=1

test --t
build -j 4`)
	sub := filepath.Join(ws, "sub")
	os.Mkdir(sub, 0o755)
	got, err := RCLines(sub, "build", "repro")
	if err != nil {
		t.Fatal(err)
	}
	// The user's file first; in each, common, then build, then repro.
	want := []string{
		"build --jobs=2 @.legorc:1",
		"common --cache_dir /c @.legorc:4",
		"build --keep_going @.legorc:3",
		"build -j 4 @.legorc:8",
		"repro --report_json=r.json @.legorc:2",
	}
	if !reflect.DeepEqual(rcText(got), want) {
		t.Errorf("RCLines =\n%s\nwant\n%s", strings.Join(rcText(got), "\n"), strings.Join(want, "\n"))
	}
	if got[0].File != filepath.Join(home, ".legorc") || got[1].File != filepath.Join(ws, ".legorc") {
		t.Errorf("files %s, %s", got[0].File, got[1].File)
	}

	// A workspace in $HOME: its .legorc is read once.
	t.Setenv("HOME", ws)
	got, err = RCLines(ws, "build")
	if err != nil || len(got) != 3 {
		t.Errorf("workspace at $HOME: %v %v", rcText(got), err)
	}
	// Outside a workspace: the user's file only.
	t.Setenv("HOME", home)
	if got, err := RCLines(t.TempDir(), "build"); err != nil || len(got) != 1 {
		t.Errorf("outside a workspace: %v %v", rcText(got), err)
	}
}

func TestRCLongLine(t *testing.T) {
	for _, tc := range []struct {
		text string
		want string // "" = no error
	}{
		{"build --a\n" + strings.Repeat("x", maxRCLine) + "\r\n", ""},
		{"build --a\n" + strings.Repeat("x", maxRCLine+1) + "\n", "rc:2: line longer than 64 KiB"},
		{"build --a\n\nbuild --define=" + strings.Repeat("x", maxRCLine) + "\nbuild --b\n", "rc:3: line longer than 64 KiB"},
		{strings.Repeat("#", maxRCLine+1), "rc:1: line longer than 64 KiB"},
	} {
		_, err := parseRC("rc", strings.NewReader(tc.text), []string{"build"})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("line of %d bytes: error %v, want %q", len(tc.text), err, tc.want)
		}
	}
}
