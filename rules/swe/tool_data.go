package swe

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/curriculum"
	"github.com/legobuild/lego/rules/swe/filter"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/llamafactory"
	"github.com/legobuild/lego/rules/swe/mask"
)

// The data plane's tools (trajectory_filter, masked_dataset, curriculum),
// and traj-generate, which writes trajectories for examples and tests.
var (
	trajFilter = legotool.Register(&legotool.Tool{Name: "traj-filter", Run: runFilter,
		Usage: "keep the resolved (and semi-resolved) trajectories"})
	trajMask = legotool.Register(&legotool.Tool{Name: "traj-mask", Run: runMask,
		Usage: "write an SFT dataset with error turns masked"})
	curriculumTool = legotool.Register(&legotool.Tool{Name: "curriculum", Run: runCurriculum,
		Usage: "split a masked dataset into curriculum stages by turn count"})
	// TrajGenerate writes synthetic trajectories (no rule runs it).
	TrajGenerate = legotool.Register(&legotool.Tool{Name: "traj-generate", Run: runGenerate,
		Usage: "write random trajectories, for examples and benchmarks"})
)

// dirTool runs a tool that writes the directory --out: on failure it is
// removed, so no partial output is ever left (the action fails anyway).
// setup declares the tool's flags and returns what writes the directory.
func dirTool(fs *flag.FlagSet, args []string, setup func(fs *flag.FlagSet) func(out string) error) error {
	out := fs.String("out", "", "output directory")
	run := setup(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("needs --out DIR and no positional arguments")
	}
	if err := run(*out); err != nil {
		os.RemoveAll(*out)
		return err
	}
	return nil
}

func runFilter(_ context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		var in, keep legotool.Strings
		fs.Var(&in, "in", "trajectory file or directory (repeatable)")
		fs.Var(&keep, "keep", "resolved or semi_resolved (repeatable)")
		maxTurns := fs.Int("max_turns", 100, "drop trajectories with more assistant turns (0 = no limit)")
		shape := fs.String("trajectory_format", "", "the records' shape: "+strings.Join(format.Shapes, ", ")+" (default: detected per file)")
		return func(out string) error {
			rep, err := filter.Run(in, out, filter.Options{Keep: keep, MaxTurns: *maxTurns}, *shape)
			if err == nil {
				warn(rep.Warnings)
			}
			return err
		}
	})
}

func runMask(_ context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		in := fs.String("in", "", "trajectory file or filter output directory")
		sft := fs.String("format", format.ShareGPT, "sharegpt or openai")
		name := fs.String("name", "", "dataset name in dataset_info.json (default: the output directory's name)")
		var errs, exempt legotool.Strings
		fs.Var(&errs, "error_pattern", "[name=]regex over tool results that masks a turn (repeatable; none = the defaults)")
		fs.Var(&exempt, "exempt_pattern", "[name=]regex over tool calls that spares a turn (repeatable; none = the defaults)")
		on := fs.Bool("mask", true, "false: mask nothing (the dataset without error masking)")
		shape := fs.String("trajectory_format", "", "the records' shape: "+strings.Join(format.Shapes, ", ")+" (default: detected per file)")
		return func(out string) error {
			m, err := mask.New(errs, exempt)
			if err != nil {
				return err
			}
			if !*on {
				m = mask.Off()
			}
			if *name == "" {
				*name = filepath.Base(out)
			}
			st, err := mask.Run(*in, out, *name, *sft, *shape, m)
			if err != nil {
				return err
			}
			warn(st.Warnings)
			return checkInfo(out, *name)
		}
	})
}

func runCurriculum(_ context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		in := fs.String("in", "", "masked dataset directory")
		name := fs.String("name", "", "dataset name prefix (default: the output directory's name)")
		cumulative := fs.Bool("cumulative", true, "stage k holds bins 1..k")
		var bins ints
		fs.Var(&bins, "bin", "upper turn count of a bin (repeatable, increasing; none = 50, 70, 100)")
		return func(out string) error {
			if len(bins) == 0 {
				bins = curriculum.DefaultBins
			}
			if *name == "" {
				*name = filepath.Base(out)
			}
			if _, err := curriculum.Run(*in, out, *name, bins, *cumulative); err != nil {
				return err
			}
			return checkInfo(out)
		}
	})
}

// warn shows the user what a step found wrong but not fatal: as build
// warnings on the step's target (see executors.WarnLine).
func warn(msgs []string) {
	for _, m := range msgs {
		fmt.Fprintln(os.Stderr, executors.WarnLine(m))
	}
}

// checkInfo checks the dataset_info.json written in out as LLaMA-Factory
// reads it, and that it registers names: a dataset written wrong would
// otherwise fail only when a training job starts, hours later.
func checkInfo(out string, names ...string) error {
	b, err := os.ReadFile(filepath.Join(out, mask.InfoFile))
	if err != nil {
		return err
	}
	return llamafactory.CheckDatasets(b, names)
}

func runGenerate(_ context.Context, fs *flag.FlagSet, args []string) error {
	n := fs.Int("n", 100, "trajectories")
	seed := fs.Int64("seed", 1, "random seed")
	out := fs.String("out", "", "JSONL file to write (.gz/.zst compress; .parquet writes Parquet)")
	shape := fs.String("shape", "lego", "record shape: "+strings.Join(format.GenShapes, ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if strings.HasSuffix(*out, ".parquet") {
		var buf bytes.Buffer
		if err := format.GenerateShape(&buf, *shape, *n, *seed); err != nil {
			return err
		}
		recs := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
		return format.WriteParquet(*out, format.Columnar(recs), 1000)
	}
	w, err := format.Create(*out)
	if err != nil {
		return err
	}
	if err := format.GenerateShape(w, *shape, *n, *seed); err != nil { // "lego" is format.Generate
		w.Abort()
		return err
	}
	return w.Commit()
}

// ints is a repeatable int flag.
type ints []int

func (l *ints) String() string { return fmt.Sprint(*l) }
func (l *ints) Set(v string) error {
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil {
		return fmt.Errorf("%q is not an integer", v)
	}
	*l = append(*l, n)
	return nil
}
