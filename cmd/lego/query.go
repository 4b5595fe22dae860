package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/executors"
)

func runQuery(args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	output := fs.String("output", "label", "label, json or graph (Graphviz dot)")
	pos, err := parseCommand(fs, args)
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
	return res.Write(os.Stdout, *output)
}

func runExplain(args []string) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	pos, err := parseCommand(fs, args)
	if err != nil {
		return err
	}
	l, err := c.loader()
	if err != nil {
		return err
	}
	pats, err := l.ParsePatterns(pos)
	if err != nil {
		return err
	}
	recs, err := engine.LastBuild(stateDir(l.Root()))
	if err != nil {
		return err
	}
	engine.Explain(os.Stdout, recs, pats)
	return nil
}

func runGC(args []string) error {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	maxSize := fs.String("max_size", "", "target size of the cache, e.g. 10GiB")
	verify := fs.Bool("verify", false, "first re-hash the whole cache and evict what is corrupt, as lego verify")
	if _, err := parseCommand(fs, args); err != nil {
		return err
	}
	if *maxSize == "" && !*verify {
		return fmt.Errorf("gc needs --max_size=SIZE (e.g. 10GiB) or --verify")
	}
	var n int64
	if *maxSize != "" {
		var err error
		if n, err = engine.ParseSize(*maxSize); err != nil {
			return fmt.Errorf("--max_size: %w", err)
		}
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
	var verr error
	if *verify {
		if verr = reportVerify(store, os.Stdout); verr != nil && !errors.Is(verr, exitError{exitCorrupt}) {
			return verr
		}
	}
	if *maxSize == "" {
		return verr
	}
	st, err := store.GC(n)
	if err != nil {
		return err
	}
	fmt.Printf("gc: %s -> %s (removed %d action results, %d blobs)\n", executors.FormatSize(st.Before), executors.FormatSize(st.After), st.RemovedActions, st.RemovedBlobs)
	return verr
}

func runVersion(args []string) error {
	fmt.Printf("lego %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
