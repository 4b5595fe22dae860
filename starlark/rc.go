package starlark

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// RCLine is a line of a .legorc file that applies to a command: "COMMAND
// ARG..." or "common ARG...".
type RCLine struct {
	File    string
	Line    int
	Command string // the line's first word
	Args    []string
}

// maxRCLine bounds a .legorc line, as a sanity check on what is read.
const maxRCLine = 64 << 10

// RCLines returns the lines of the .legorc files (the user's, then the
// workspace's, the one around dir) that give defaults to a command. The
// command is the last of commands; those before it are the commands it
// inherits from (repro takes build's lines). In each file, as in Bazel's
// rc files, common lines come first, then each command's in that order.
func RCLines(dir string, commands ...string) ([]RCLine, error) {
	var files []string
	if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".legorc"))
	}
	if root, err := FindRoot(dir); dir != "" && err == nil {
		if p := filepath.Join(root, ".legorc"); len(files) == 0 || !sameFile(files[0], p) {
			files = append(files, p)
		}
	}
	var out []RCLine
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue // no such file
		}
		lines, err := parseRC(f, fh, commands)
		fh.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	return out, nil
}

// sameFile reports whether a and b name one file (a workspace in $HOME).
func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return os.SameFile(sa, sb)
}

// parseRC reads the lines of the rc file at path (read from r) for
// commands, ordered as RCLines says.
func parseRC(path string, r io.Reader, commands []string) ([]RCLine, error) {
	rank := map[string]int{"common": 0}
	for i, c := range commands {
		rank[c] = i + 1
	}
	var out []RCLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxRCLine+len("\r\n"))
	n := 0
	tooLong := func(n int) error { return fmt.Errorf("%s:%d: line longer than %d KiB", path, n, maxRCLine>>10) }
	for sc.Scan() {
		n++
		if len(sc.Bytes()) > maxRCLine {
			return nil, tooLong(n)
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if _, ok := rank[fields[0]]; ok {
			out = append(out, RCLine{File: path, Line: n, Command: fields[0], Args: fields[1:]})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, tooLong(n + 1)
		}
		return nil, fmt.Errorf("%s:%d: %w", path, n+1, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Command] < rank[out[j].Command] })
	return out, nil
}
