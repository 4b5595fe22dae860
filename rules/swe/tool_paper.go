package swe

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/paper"
)

// The tools of paper_table and paper_figure.
var (
	paperTable = legotool.Register(&legotool.Tool{Name: "paper-table", Run: runPaperTable,
		Usage: "write a results table (Markdown and CSV) of evaluations"})
	paperFigure = legotool.Register(&legotool.Tool{Name: "paper-figure", Run: runPaperFigure,
		Usage: "draw a results figure (SVG and PNG) of evaluations"})
)

// paperFlags are what paper-table and paper-figure share: the rows, in
// order, and the two files they write.
type paperFlags struct {
	fs         *flag.FlagSet
	rows       legotool.Strings
	outA, outB *string
	extA, extB string
}

func newPaperFlags(fs *flag.FlagSet, extA, docA, extB, docB string) *paperFlags {
	f := &paperFlags{fs: fs, extA: extA, extB: extB}
	f.fs.Var(&f.rows, "row", "LABEL=PATH: a row, PATH an evaluation directory or its eval.json (repeatable, in order; the label ends at the last '=')")
	f.outA = f.fs.String(extA, "", docA)
	f.outB = f.fs.String(extB, "", docB)
	return f
}

// parse reads the flags and the rows' evaluations.
func (f *paperFlags) parse(args []string) ([]paper.Row, error) {
	if err := f.fs.Parse(args); err != nil {
		return nil, err
	}
	if *f.outA == "" || *f.outB == "" || f.fs.NArg() > 0 {
		return nil, fmt.Errorf("needs --%s and --%s and no positional arguments", f.extA, f.extB)
	}
	if len(f.rows) == 0 {
		return nil, fmt.Errorf("needs at least one --row")
	}
	var rows []paper.Row
	for _, r := range f.rows {
		row, err := paper.ReadRow(r)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// write writes both outputs, or neither.
func (f *paperFlags) write(a, b []byte, err error) error {
	if err == nil {
		err = os.WriteFile(*f.outA, a, 0o644)
	}
	if err == nil {
		err = os.WriteFile(*f.outB, b, 0o644)
	}
	if err != nil {
		os.Remove(*f.outA)
		os.Remove(*f.outB)
	}
	return err
}

func runPaperTable(_ context.Context, fs *flag.FlagSet, args []string) error {
	f := newPaperFlags(fs, "md", "Markdown file to write (percentages, one decimal)", "csv", "CSV file to write (fractions)")
	var cols legotool.Strings
	f.fs.Var(&cols, "column", "a column (repeatable, in order; none = pass@1, tts@k, best@k); allowed: "+paper.Allowed)
	rows, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		cols = paper.DefaultColumns
	}
	return f.write(paper.Table(rows, cols))
}

func runPaperFigure(_ context.Context, fs *flag.FlagSet, args []string) error {
	f := newPaperFlags(fs, "svg", "SVG file to write", "png", "PNG file to write")
	kind := f.fs.String("kind", "", "the figure: "+strings.Join(paper.Kinds, ", "))
	title := f.fs.String("title", "", "the figure's title (empty = the kind's own)")
	rows, err := f.parse(args)
	if err != nil {
		return err
	}
	return f.write(paper.Figure(*kind, rows, *title))
}
