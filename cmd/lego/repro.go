package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/engine"
)

// exitDiffers is lego repro's exit status when some action's outputs
// differ from the cached ones (1 is an error, as for every command).
const exitDiffers = 3

// runRepro builds the targets, then re-executes every action of their
// closure into a scratch store and compares the outputs with the cached
// ones (DESIGN.md, decision 7).
func runRepro(args []string) error {
	fs := flag.NewFlagSet("repro", flag.ContinueOnError)
	var f buildFlags
	f.register(fs)
	reportJSON := fs.String("report_json", "", "write the report as JSON to this file")
	// build's .legorc lines apply too: repro must find the cache and
	// settings that build uses.
	pats, err := parseCommand(fs, args, "build")
	if err != nil {
		return err
	}
	if f.nobuild {
		return errors.New("--nobuild: repro builds and re-executes the targets")
	}
	var rep *engine.ReproReport
	err = f.build(pats, func(b *built) error {
		var err error
		rep, err = repro(b, &f)
		return err
	})
	if rep == nil {
		return err
	}
	rep.Print(os.Stdout)
	if *reportJSON != "" {
		if werr := rep.WriteJSON(*reportJSON); werr != nil {
			return werr
		}
	}
	switch {
	case err != nil:
		return err
	case rep.Failed > 0:
		return fmt.Errorf("repro: %d action(s) failed to re-execute", rep.Failed)
	case rep.Differ > 0:
		return exitError{exitDiffers}
	}
	return nil
}

// repro re-executes into a store of its own inside the cache's tmp (on the
// cache's filesystem, so inputs are staged as hard links), removed after.
func repro(b *built, f *buildFlags) (*engine.ReproReport, error) {
	start := time.Now()
	dir, err := b.disk.TempDir("repro-")
	if err != nil {
		return nil, err
	}
	defer cas.RemoveAll(dir)
	scratch, err := cas.Open(dir)
	if err != nil {
		return nil, err
	}
	defer scratch.Close()
	exe, err := f.executors(b.ctx, b.g, b.targets, scratch, nil)
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	o := b.opts
	prog := newProgress(os.Stderr, f.progress)
	o.Executor, o.Caps, o.Listener = exe, exe.Caps, prog
	fmt.Fprintln(os.Stderr, "INFO: re-executing every action, bypassing the cache")
	rep, err := engine.Repro(b.ctx, b.g, b.targets, o, scratch)
	prog.stop()
	if b.ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "ERROR: repro interrupted")
		return rep, exitError{130}
	}
	if rep != nil {
		for _, r := range rep.Actions {
			if r.Status == engine.ReproFailed {
				fmt.Fprintln(os.Stderr, "ERROR: "+r.Error)
			}
		}
		fmt.Fprintf(os.Stderr, "INFO: repro took %.2fs\n", time.Since(start).Seconds())
	}
	return rep, err
}
