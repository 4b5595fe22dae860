// Command lego is the build system's command line. It parses flags and
// dispatches the commands (build, query, explain, repro, clean, gc, verify,
// help, version, tool); what they do lives in starlark, engine, cas, executors
// and the rule packages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
)

// Version is set at link time (-X main.Version=...).
var Version = "dev"

type command struct {
	name  string
	usage string
	run   func(args []string) error
}

var commands = []command{
	{"help", helpUsage, nil}, // dispatched before the table
	{"build", "build [flags] PATTERN...   bring targets up to date", runBuild},
	{"query", "query [flags] EXPR         deps(), rdeps(), kind(), attr() over the target graph", runQuery},
	{"explain", "explain [flags] LABEL     why the actions of LABEL ran in the last build", runExplain},
	{"repro", "repro [flags] PATTERN...   build, then re-execute every action bypassing the cache and compare outputs (exit 3: some differ)", runRepro},
	{"clean", "clean [--expunge]          remove lego-out (and the cache with --expunge)", runClean},
	{"gc", "gc --max_size=SIZE [--verify]  shrink the cache to SIZE, least recently used first (--verify: lego verify first)", runGC},
	{"verify", "verify                   re-hash the whole cache, evict what is corrupt and list it (exit 3: something was)", runVerify},
	{"version", "version                  print the version", runVersion},
	{"tool", "tool NAME [flags]           run one of the tools rules use as actions (lego tool lists them)", runTool},
}

func main() {
	tuneGC()
	os.Exit(mainErr(os.Args[1:]))
}

// tuneGC trades memory for time: a build's heap is mostly its graph, live
// until the end, so collecting at 100% growth rescans it over and over (a
// third of a 100k-target null build's CPU). A soft limit of a quarter of
// RAM brings the collector back when memory is short. GOGC and GOMEMLIMIT
// still win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		var si syscall.Sysinfo_t
		if syscall.Sysinfo(&si) == nil && si.Totalram > 0 {
			debug.SetMemoryLimit(int64(si.Totalram) * int64(si.Unit) / 4)
		}
	}
}

func mainErr(args []string) int {
	if len(args) > 1 && args[0] == "help" {
		return runHelp(args[1:])
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage()
		return 2
	}
	c := commandNamed(args[0])
	if c == nil {
		fmt.Fprintf(os.Stderr, "lego: unknown command %q\n", args[0])
		usage()
		return 2
	}
	err := c.run(args[1:])
	var ex exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ex):
		return ex.code
	case errors.Is(err, flag.ErrHelp):
		return 2
	}
	fmt.Fprintln(os.Stderr, "ERROR: "+err.Error())
	return 1
}

type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lego COMMAND [flags] [args]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintln(os.Stderr, "  "+c.usage)
	}
}

// parseInterleaved parses flags that may come after positional arguments,
// as Bazel users write them (lego build //... -j 4).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
