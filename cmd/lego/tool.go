package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/rules/legotool"
	// The packages whose rules run tools register them.
	_ "github.com/legobuild/lego/rules/oci"
	_ "github.com/legobuild/lego/rules/swe"
)

// runTool runs `lego tool NAME ...`: one of the tools rules use as
// actions (legotool.Tool), found by name.
func runTool(args []string) error {
	var t *legotool.Tool
	if len(args) > 0 {
		t = legotool.Lookup(args[0])
	}
	if t == nil {
		return fmt.Errorf("usage: lego tool NAME [flags]; tools:\n%s", toolList())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := t.Main(ctx, args[1:]); err != nil {
		err = fmt.Errorf("tool %s: %w", t.Name, err)
		// An infrastructure failure (an endpoint's, the runtime's) is
		// told to lego by convention (executors.InfraExit), so that the
		// build reports its class.
		if line, ok := executors.InfraLine(err); ok {
			fmt.Fprintln(os.Stderr, line) // the whole message, on one line
			return exitError{executors.InfraExit}
		}
		return err
	}
	return nil
}

// toolList is one line per registered tool: its name and what it does.
func toolList() string {
	var b strings.Builder
	for _, t := range legotool.All() {
		fmt.Fprintf(&b, "  %-16s %s\n", t.Name, t.Usage)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
