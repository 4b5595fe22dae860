package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/legobuild/lego/starlark"
)

// parseCommand parses a command's flags: first the defaults of the
// .legorc lines for it (and for the commands it inherits from, given in
// inherits), then args. It returns the positional arguments.
func parseCommand(fs *flag.FlagSet, args []string, inherits ...string) ([]string, error) {
	wd, _ := os.Getwd()
	lines, err := starlark.RCLines(wd, append(inherits, fs.Name())...)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		if err := applyRCLine(fs, l); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", l.File, l.Line, err)
		}
	}
	return parseInterleaved(fs, args)
}

// applyRCLine sets the flags of one .legorc line on fs. As in Bazel, a
// flag of a common line that the command does not take is skipped; on a
// line naming a command, it is an error.
func applyRCLine(fs *flag.FlagSet, l starlark.RCLine) error {
	for i := 0; i < len(l.Args); i++ {
		a := l.Args[i]
		name, value, hasValue := splitFlag(a)
		if name == "" {
			return fmt.Errorf("%q is not a flag (a .legorc line is COMMAND --flag...)", a)
		}
		// The value of "--flag value" is the next word, as flag parses it.
		next := func() (string, bool) {
			if hasValue || i+1 >= len(l.Args) {
				return value, hasValue
			}
			i++
			return l.Args[i], true
		}
		f := fs.Lookup(name)
		if f == nil {
			if l.Command != "common" {
				return fmt.Errorf("unknown flag --%s for lego %s", name, fs.Name())
			}
			if !hasValue && i+1 < len(l.Args) && !strings.HasPrefix(l.Args[i+1], "-") {
				i++ // its value, as far as one can tell
			}
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			if !hasValue {
				value = "true"
			}
		} else if value, hasValue = next(); !hasValue {
			return fmt.Errorf("flag --%s needs a value", name)
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("invalid value %q for flag --%s: %v", value, name, err)
		}
	}
	return nil
}

// splitFlag splits "--name=value", "-name=value", "--name" or "-name"; name
// is "" when a is no flag.
func splitFlag(a string) (name, value string, hasValue bool) {
	s, ok := strings.CutPrefix(a, "-")
	if !ok {
		return "", "", false
	}
	s = strings.TrimPrefix(s, "-")
	name, value, hasValue = strings.Cut(s, "=")
	if name == "" || strings.HasPrefix(name, "-") {
		return "", "", false
	}
	return name, value, hasValue
}
