package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/executors"
)

func runQuery(args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	output := fs.String("output", "label", "label, json or graph (Graphviz dot)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("query takes one expression, e.g. lego query 'deps(//pkg:name)'")
	}
	l, err := c.loader()
	if err != nil {
		return err
	}
	res, err := engine.Query(l, pos[0])
	if err != nil {
		return err
	}
	switch *output {
	case "label":
		for _, lab := range res.Labels {
			fmt.Println(lab)
		}
	case "json":
		type jt struct {
			Label string            `json:"label"`
			Kind  string            `json:"kind"`
			Pos   string            `json:"location,omitempty"`
			Deps  []string          `json:"deps,omitempty"`
			Attrs map[string]string `json:"attrs,omitempty"`
		}
		out := make([]jt, 0, len(res.Labels))
		for _, lab := range res.Labels {
			t := res.Targets[lab]
			j := jt{Label: lab.String(), Kind: t.Kind(), Pos: t.Pos}
			for _, d := range t.Deps() {
				j.Deps = append(j.Deps, d.String())
			}
			if t.Rule != nil {
				j.Attrs = map[string]string{}
				for _, s := range t.Rule.Attrs() {
					j.Attrs[s.Name] = engine.FormatAttr(t.Attrs[s.Name])
				}
			}
			out = append(out, j)
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "graph":
		in := map[engine.Label]bool{}
		for _, lab := range res.Labels {
			in[lab] = true
		}
		fmt.Println("digraph lego {")
		fmt.Println("  node [shape=box];")
		for _, lab := range res.Labels {
			fmt.Printf("  %q;\n", lab.String())
			for _, d := range res.Targets[lab].Deps() {
				if in[d] {
					fmt.Printf("  %q -> %q;\n", lab.String(), d.String())
				}
			}
		}
		fmt.Println("}")
	default:
		return fmt.Errorf("--output=%s: want label, json or graph", *output)
	}
	return nil
}

func runExplain(args []string) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	l, err := c.loader()
	if err != nil {
		return err
	}
	pats, err := parsePatterns(pos, relPkg(l.Root()))
	if err != nil {
		return err
	}
	recs, err := engine.LastBuild(stateDir(l.Root()))
	if err != nil {
		return err
	}
	if recs == nil {
		fmt.Println("no build of this workspace is recorded (lego-out/.lego is missing)")
		return nil
	}
	for _, p := range pats {
		n := 0
		for _, r := range recs {
			lab, err := engine.ParseLabel(r.Label, "")
			if err != nil || !p.MatchesPkg(lab.Pkg) || (!p.All && !p.Recursive && lab.Name != p.Name) {
				continue
			}
			n++
			fmt.Printf("%s %s %s ran because:\n", r.Label, r.Mnemonic, strings.TrimPrefix(r.Output, engine.OutDir+"/"))
			for _, reason := range r.Reasons {
				fmt.Println("  - " + reason)
			}
		}
		if n == 0 {
			fmt.Printf("%s: no action of it ran in the last build (it was up to date, or not built)\n", p)
		}
	}
	return nil
}

func runClean(args []string) error {
	fs := flag.NewFlagSet("clean", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	expunge := fs.Bool("expunge", false, "also delete the whole cache (--cache_dir)")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := findRoot(wd)
	if err != nil {
		return err
	}
	if err := removeTree(filepath.Join(root, engine.OutDir)); err != nil {
		return err
	}
	if !*expunge {
		return nil
	}
	store, err := cas.Open(c.cacheDir)
	if err != nil {
		return err
	}
	unlock, err := store.LockExclusive()
	if err != nil {
		return err
	}
	defer unlock()
	entries, err := os.ReadDir(c.cacheDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "lock" {
			continue // held by us; removing it would let another process lock a new file
		}
		if err := removeTree(filepath.Join(c.cacheDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// removeTree removes a tree that may hold read-only directories.
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

func runGC(args []string) error {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	maxSize := fs.String("max_size", "", "target size of the cache, e.g. 10GiB")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	if *maxSize == "" {
		return fmt.Errorf("gc needs --max_size=SIZE (e.g. 10GiB)")
	}
	n, err := engine.ParseSize(*maxSize)
	if err != nil {
		return fmt.Errorf("--max_size: %w", err)
	}
	store, err := cas.Open(c.cacheDir)
	if err != nil {
		return err
	}
	unlock, err := store.LockExclusive()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := store.GC(n)
	if err != nil {
		return err
	}
	fmt.Printf("gc: %s -> %s (removed %d action results, %d blobs)\n", executors.FormatSize(st.Before), executors.FormatSize(st.After), st.RemovedActions, st.RemovedBlobs)
	return nil
}

func runVersion(args []string) error {
	fmt.Printf("lego %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
