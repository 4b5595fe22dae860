package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/legobuild/lego/starlark"
)

// helpUsage is the help command's line in usage().
const helpUsage = "help rules|RULE [--markdown]  the built-in rules: attributes, types, defaults (as in docs/rules.md)"

// runHelp prints the reference of the built-in rules (rules), one rule or
// built-in, or where to find a command's flags. It reads no .legorc and
// no workspace: the built-ins are the same everywhere.
func runHelp(args []string) int {
	fs := flag.NewFlagSet("help", flag.ContinueOnError)
	markdown := fs.Bool("markdown", false, "Markdown, as in docs/rules.md")
	names, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if err := help(os.Stdout, names, *markdown); err != nil {
		fmt.Fprintln(os.Stderr, "ERROR: "+err.Error())
		return 2
	}
	return 0
}

func help(w io.Writer, names []string, markdown bool) error {
	ref := starlark.Reference()
	for i, name := range names {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if c := commandNamed(name); c != nil {
			fmt.Fprintf(w, "lego %s\n\nRun `lego %s -h` for its flags.\n", c.usage, c.name)
		} else if err := ref.Help(w, name, markdown); err != nil {
			return fmt.Errorf("lego help: %w", err)
		}
	}
	return nil
}

func commandNamed(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}
