package swe

import (
	"fmt"
	"path"
	"strings"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/paper"
	"github.com/legobuild/lego/rules/swe/tts"
)

// paperRules lists paper_table and paper_figure.
func paperRules() []engine.Rule { return []engine.Rule{PaperTable{}, PaperFigure{}} }

// rowsAttr is the rows attribute both rules share: a dict kept in the
// order written, since that is the order of the table's rows and the
// figure's series.
var rowsAttr = engine.AttrSpec{Name: "rows", Type: engine.AttrLabelDictOrdered, Mandatory: true,
	Doc: "row label -> a verifier_eval (a directory holding eval.json) or an eval.json file, in the order the rows appear"}

// PaperTable is paper_table: <name>.md and <name>.csv, one row per
// evaluation.
type PaperTable struct{}

func (PaperTable) Kind() string { return "paper_table" }

func (PaperTable) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		rowsAttr,
		{Name: "columns", Type: engine.AttrStringList, Default: paper.DefaultColumns, Doc: "in order; allowed: " + paper.Allowed},
	}
}

func (PaperTable) Analyze(ctx *engine.Context) error {
	cols := ctx.Attr("columns").([]string)
	if _, err := paper.ParseColumns(cols); err != nil {
		return fmt.Errorf("attribute columns: %w", err)
	}
	ins, args, err := paperRows(ctx)
	if err != nil {
		return err
	}
	for _, c := range cols {
		args = append(args, "--column", c)
	}
	return paperAction(ctx, paperTable, ins, args, "md", "csv")
}

// PaperFigure is paper_figure: <name>.svg and <name>.png, one series per
// evaluation.
type PaperFigure struct{}

func (PaperFigure) Kind() string { return "paper_figure" }

func (PaperFigure) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "kind", Type: engine.AttrString, Mandatory: true, Doc: strings.Join(paper.Kinds, ", ")},
		rowsAttr,
		{Name: "title", Type: engine.AttrString, Doc: "the figure's title; empty = the kind's own"},
	}
}

func (PaperFigure) Analyze(ctx *engine.Context) error {
	kind := ctx.Attr("kind").(string)
	if err := paper.CheckKind(kind); err != nil {
		return fmt.Errorf("attribute kind: %w", err)
	}
	ins, args, err := paperRows(ctx)
	if err != nil {
		return err
	}
	args = append(args, "--kind", kind, "--title", ctx.Attr("title").(string))
	return paperAction(ctx, paperFigure, ins, args, "svg", "png")
}

// paperRows finds each row's evaluation and makes the tool's --row flags.
func paperRows(ctx *engine.Context) ([]*engine.File, []string, error) {
	rows := ctx.Attr("rows").([]engine.KeyedLabel)
	labels := make([]string, len(rows))
	for i, r := range rows {
		labels[i] = r.Key
	}
	if err := paper.CheckLabels(labels); err != nil {
		return nil, nil, fmt.Errorf("attribute rows: %w", err)
	}
	var ins []*engine.File
	var args []string
	for _, r := range rows {
		f := evalFile(ctx.Dep(r.Label).Files)
		if f == nil {
			return nil, nil, fmt.Errorf("attribute rows: row %q: %s gives no evaluation (want one directory holding %s, or a %s file)", r.Key, r.Label, tts.FileName, tts.FileName)
		}
		if strings.Contains(f.Path, "=") { // --row splits at the last "="
			return nil, nil, fmt.Errorf("attribute rows: row %q: the path %s holds '='", r.Key, f.Path)
		}
		ins = append(ins, f)
		args = append(args, "--row", r.Key+"="+f.Path)
	}
	return ins, args, nil
}

// evalFile is the file of a target's outputs that holds an evaluation:
// its only file, or else its one directory or eval.json.
func evalFile(files []*engine.File) *engine.File {
	if len(files) == 1 {
		return files[0]
	}
	var found *engine.File
	for _, f := range files {
		if f.Dir || path.Base(f.Path) == tts.FileName {
			if found != nil {
				return nil
			}
			found = f
		}
	}
	return found
}

// paperAction declares <name>.<ext> for each extension and the tool action
// writing them, passed as --<ext> PATH.
func paperAction(ctx *engine.Context, tool *legotool.Tool, ins []*engine.File, args []string, exts ...string) error {
	var outs []*engine.File
	for _, ext := range exts {
		f, err := ctx.DeclareFile(ctx.Label().Name+"."+ext, false)
		if err != nil {
			return err
		}
		outs = append(outs, f)
		args = append(args, "--"+ext, f.Path)
	}
	a, err := legotool.Action(tool, nil, ins, outs, args...)
	if err != nil {
		return err
	}
	ctx.Target.Files = outs
	return ctx.AddAction(a)
}
