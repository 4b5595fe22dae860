// Command lego is the build system's command line: build, query, explain,
// clean, gc, version.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/legobuild/lego/engine"
)

// Version is set at link time (-X main.Version=...).
var Version = "dev"

type command struct {
	name  string
	usage string
	run   func(args []string) error
}

var commands = []command{
	{"build", "build [flags] PATTERN...   bring targets up to date", runBuild},
	{"query", "query [flags] EXPR         deps(), rdeps(), kind(), attr() over the target graph", runQuery},
	{"explain", "explain [flags] LABEL     why the actions of LABEL ran in the last build", runExplain},
	{"repro", "repro [flags] PATTERN...   build, then re-execute every action bypassing the cache and compare outputs (exit 3: some differ)", runRepro},
	{"clean", "clean [--expunge]          remove lego-out (and the cache with --expunge)", runClean},
	{"gc", "gc --max_size=SIZE            shrink the cache to SIZE, least recently used first", runGC},
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
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage()
		return 2
	}
	for _, c := range commands {
		if c.name == args[0] {
			rest, err := withRC(c.name, args[1:])
			if err == nil {
				err = c.run(rest)
			}
			if err != nil {
				var ex exitError
				if errors.As(err, &ex) {
					return ex.code
				}
				if errors.Is(err, flag.ErrHelp) {
					return 2
				}
				fmt.Fprintln(os.Stderr, "ERROR: "+err.Error())
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "lego: unknown command %q\n", args[0])
	usage()
	return 2
}

type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lego COMMAND [flags] [args]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintln(os.Stderr, "  "+c.usage)
	}
}

// withRC prepends the defaults of .legorc files (home, then workspace):
// lines "COMMAND --flag..." or "common --flag...".
func withRC(cmd string, args []string) ([]string, error) {
	if cmd == "tool" {
		return args, nil // actions: their arguments are all they read
	}
	var files []string
	if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".legorc"))
	}
	if wd, err := os.Getwd(); err == nil {
		if root, err := findRoot(wd); err == nil {
			files = append(files, filepath.Join(root, ".legorc"))
		}
	}
	var pre []string
	for _, f := range files {
		flags, err := readRC(f, cmd)
		if err != nil {
			return nil, err
		}
		pre = append(pre, flags...)
	}
	return append(pre, args...), nil
}

func readRC(path, cmd string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if fields[0] != cmd && fields[0] != "common" {
			continue
		}
		for _, f := range fields[1:] {
			if !strings.HasPrefix(f, "-") && (len(out) == 0 || !strings.HasPrefix(out[len(out)-1], "-")) {
				return nil, fmt.Errorf("%s:%d: %q is not a flag (a .legorc line is COMMAND --flag...)", path, n, f)
			}
			out = append(out, f)
		}
	}
	return out, sc.Err()
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

func defaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "lego")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "lego")
	}
	return filepath.Join(os.TempDir(), "lego-cache")
}

// relPkg is the package path of the working directory, for relative patterns.
func relPkg(root string) string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(wd); err == nil {
		wd = real
	}
	rel, err := filepath.Rel(root, wd)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return ""
	}
	return filepath.ToSlash(rel)
}

func parsePatterns(args []string, pkg string) ([]engine.Pattern, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no target pattern given (e.g. //... or //pkg:name)")
	}
	pats := make([]engine.Pattern, len(args))
	for i, a := range args {
		p, err := engine.ParsePattern(a, pkg)
		if err != nil {
			return nil, err
		}
		pats[i] = p
	}
	return pats, nil
}
