// Package swe holds the rules of the SWE-Lego recipe. Environments and
// tasks: git_repo, swe_env and task_set (env.go, taskset.go; package
// tasks). The data plane: trajectory_filter, masked_dataset and
// curriculum, each one action running a `lego tool` command (packages
// filter, mask, curriculum) that writes a directory: the data, its
// dataset_info.json where it is SFT data, and stats. The `lego tool`
// commands of all these rules are registered here (tool_*.go), their
// data logic in the packages below.
package swe

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/curriculum"
	"github.com/legobuild/lego/rules/swe/filter"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/mask"
)

// Rules lists the data-plane rule classes.
func Rules() []engine.Rule {
	rules := []engine.Rule{Filter{}, Masked{}, Curriculum{}, GitRepo{}, Env{}, EnvSet{}, TaskSet{}, ModelEndpoint{}, ScriptedPolicy{}, Rollout{}}
	rules = append(rules, trainRules()...)
	return append(rules, paperRules()...)
}

// dirAction declares the target's output directory and adds the tool
// action writing it.
func dirAction(ctx *engine.Context, tool *legotool.Tool, inputs []*engine.File, args ...string) error {
	out, err := ctx.DeclareFile(ctx.Label().Name, true)
	if err != nil {
		return err
	}
	args = append(args, "--out", out.Path)
	a, err := legotool.Action(tool, nil, inputs, []*engine.File{out}, args...)
	if err != nil {
		return err
	}
	ctx.Target.Files = []*engine.File{out}
	return ctx.AddAction(a)
}

// Filter is trajectory_filter.
type Filter struct{}

func (Filter) Kind() string { return "trajectory_filter" }

func (Filter) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "trajectories", Type: engine.AttrLabelList, Mandatory: true, Doc: "trajectory JSONL files (or rollout outputs)"},
		{Name: "keep", Type: engine.AttrStringList, Default: []string{filter.Resolved, filter.SemiResolved}, Doc: "resolved, semi_resolved"},
		{Name: "max_turns", Type: engine.AttrInt, Default: int64(100), Doc: "drop longer trajectories (0 = no limit)"},
		trajectoryFormat,
	}
}

// trajectoryFormat names the shape of the records a step reads; none:
// each file's is detected from its first record.
var trajectoryFormat = engine.AttrSpec{Name: "trajectory_format", Type: engine.AttrString,
	Doc: "the records' shape: " + strings.Join(format.Shapes, ", ") + "; empty = detected per file (see rules/swe/format)"}

// shapeArgs checks the trajectory_format attribute and passes it on.
func shapeArgs(ctx *engine.Context, args []string) ([]string, error) {
	s := ctx.Attr("trajectory_format").(string)
	if err := format.CheckShape(s); err != nil {
		return nil, fmt.Errorf("attribute trajectory_format: %w", err)
	}
	if s == "" {
		return args, nil
	}
	return append(args, "--trajectory_format", s), nil
}

func (Filter) Analyze(ctx *engine.Context) error {
	o := filter.Options{Keep: ctx.Attr("keep").([]string), MaxTurns: int(ctx.Attr("max_turns").(int64))}
	if err := o.Check(); err != nil {
		return fmt.Errorf("attribute %w", err)
	}
	ins := ctx.Files("trajectories")
	if len(ins) == 0 {
		return fmt.Errorf("attribute trajectories: no files")
	}
	var args []string
	for _, f := range ins {
		args = append(args, "--in", f.Path)
	}
	for _, k := range o.Keep {
		args = append(args, "--keep", k)
	}
	args = append(args, "--max_turns", strconv.Itoa(o.MaxTurns))
	args, err := shapeArgs(ctx, args)
	if err != nil {
		return err
	}
	return dirAction(ctx, trajFilter, ins, args...)
}

// Masked is masked_dataset.
type Masked struct{}

func (Masked) Kind() string { return "masked_dataset" }

func (Masked) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "trajectories", Type: engine.AttrLabel, Mandatory: true, Doc: "a trajectory_filter (or a JSONL file)"},
		{Name: "error_patterns", Type: engine.AttrStringList, Doc: "[name=]regex over tool results; empty = the documented defaults"},
		{Name: "exempt_patterns", Type: engine.AttrStringList, Doc: "[name=]regex over tool calls; empty = the documented defaults"},
		{Name: "format", Type: engine.AttrString, Default: format.ShareGPT, Doc: "sharegpt or openai"},
		{Name: "mask", Type: engine.AttrBool, Default: true, Doc: "False: no turn is masked (the ablation without error masking); the patterns are then not used"},
		trajectoryFormat,
	}
}

func (Masked) Analyze(ctx *engine.Context) error {
	sft := ctx.Attr("format").(string)
	if err := format.CheckFormat(sft); err != nil {
		return fmt.Errorf("attribute format: %w", err)
	}
	errs, exempt := ctx.Attr("error_patterns").([]string), ctx.Attr("exempt_patterns").([]string)
	if _, err := mask.New(errs, exempt); err != nil { // bad regexes fail at analysis
		return fmt.Errorf("attribute %w", err)
	}
	ins := ctx.Files("trajectories")
	if len(ins) != 1 {
		return fmt.Errorf("attribute trajectories: want one file or directory, got %d", len(ins))
	}
	args, err := shapeArgs(ctx, []string{"--in", ins[0].Path, "--format", sft, "--name", ctx.Label().Name})
	if err != nil {
		return err
	}
	if !ctx.Attr("mask").(bool) {
		if len(errs)+len(exempt) > 0 {
			return fmt.Errorf("attribute error_patterns: set with mask = False, where no pattern is used")
		}
		return dirAction(ctx, trajMask, ins, append(args, "--mask=false")...)
	}
	for _, p := range errs {
		args = append(args, "--error_pattern", p)
	}
	for _, p := range exempt {
		args = append(args, "--exempt_pattern", p)
	}
	return dirAction(ctx, trajMask, ins, args...)
}

// Curriculum is curriculum.
type Curriculum struct{}

func (Curriculum) Kind() string { return "curriculum" }

func (Curriculum) Attrs() []engine.AttrSpec {
	var def []int64
	for _, b := range curriculum.DefaultBins {
		def = append(def, int64(b))
	}
	return []engine.AttrSpec{
		{Name: "dataset", Type: engine.AttrLabel, Mandatory: true, Doc: "a masked_dataset"},
		{Name: "bins", Type: engine.AttrIntList, Default: def, Doc: "upper turn counts of the bins, increasing"},
		{Name: "cumulative", Type: engine.AttrBool, Default: true, Doc: "stage k holds bins 1..k"},
	}
}

func (Curriculum) Analyze(ctx *engine.Context) error {
	var bins []int
	for _, n := range ctx.Attr("bins").([]int64) {
		bins = append(bins, int(n))
	}
	if err := curriculum.CheckBins(bins); err != nil {
		return fmt.Errorf("attribute %w", err)
	}
	ins := ctx.Files("dataset")
	if len(ins) != 1 || !ins[0].Dir {
		return fmt.Errorf("attribute dataset: want a masked_dataset (one directory)")
	}
	args := []string{"--in", ins[0].Path, "--name", ctx.Label().Name, "--cumulative=" + strconv.FormatBool(ctx.Attr("cumulative").(bool))}
	for _, b := range bins {
		args = append(args, "--bin", strconv.Itoa(b))
	}
	return dirAction(ctx, curriculumTool, ins, args...)
}
