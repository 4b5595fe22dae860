// Package paper turns verifier evaluations (tts.Eval, eval.json) into the
// paper's results: tables (Markdown and CSV) and figures (SVG and PNG:
// test-time-scaling curves, resolve rate against turns, ablation bars).
package paper

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"

	"github.com/legobuild/lego/rules/swe/tts"
)

// Row is one row of a table, one series of a figure: a label and the
// evaluation it shows.
type Row struct {
	Label string
	Eval  *tts.Eval
}

// ReadRow reads a row given as LABEL=PATH, PATH an evaluation directory
// or its eval.json; the label ends at the last '='.
func ReadRow(spec string) (Row, error) {
	i := strings.LastIndex(spec, "=")
	if i < 0 {
		return Row{}, fmt.Errorf("--row %q: want LABEL=PATH", spec)
	}
	e, err := tts.Read(spec[i+1:])
	if err != nil {
		return Row{}, fmt.Errorf("row %q: %w", spec[:i], err)
	}
	return Row{Label: spec[:i], Eval: e}, nil
}

// DefaultColumns are a table's columns unless the user names others.
var DefaultColumns = []string{"pass@1", "tts@k", "best@k"}

// Allowed lists the column names, for errors and docs.
const Allowed = "pass@1, tts@k, best@k, k, instances, tts@N, best@N (N = 1..K, from the curve)"

// Column is one column of a table.
type Column struct {
	Name   string // as written, e.g. "tts@4"
	metric string // pass@1, tts, best, k or instances
	n      int    // the k of tts/best; 0 = the row's K
}

// ParseColumn checks a column name.
func ParseColumn(s string) (Column, error) {
	c := Column{Name: s}
	switch s {
	case "pass@1", "k", "instances":
		c.metric = s
		return c, nil
	case "tts@k", "best@k":
		c.metric = strings.TrimSuffix(s, "@k")
		return c, nil
	}
	if m, n, ok := strings.Cut(s, "@"); ok && (m == "tts" || m == "best") {
		if k, err := strconv.Atoi(n); err == nil && k >= 1 && strconv.Itoa(k) == n {
			c.metric, c.n = m, k
			return c, nil
		}
	}
	return Column{}, fmt.Errorf("%q is not a column; allowed: %s", s, Allowed)
}

// ParseColumns checks a table's column list: at least one, each known,
// none twice.
func ParseColumns(names []string) ([]Column, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("no columns; allowed: %s", Allowed)
	}
	seen := map[string]bool{}
	cols := make([]Column, len(names))
	for i, n := range names {
		c, err := ParseColumn(n)
		if err != nil {
			return nil, err
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("column %q is named twice", n)
		}
		seen[c.Name] = true
		cols[i] = c
	}
	return cols, nil
}

// checkRows checks the rows' labels (CheckLabels).
func checkRows(rows []Row) error {
	labels := make([]string, len(rows))
	for i, r := range rows {
		labels[i] = r.Label
	}
	return CheckLabels(labels)
}

// CheckLabels wants at least one row and labels that fit in a table cell
// and a legend: not empty, one line.
func CheckLabels(labels []string) error {
	if len(labels) == 0 {
		return fmt.Errorf("no rows")
	}
	for _, l := range labels {
		if strings.TrimSpace(l) == "" || strings.ContainsAny(l, "\r\n") {
			return fmt.Errorf("row label %q: want a non-empty single line", l)
		}
	}
	return nil
}

func (c Column) fraction() bool {
	return c.metric == "pass@1" || c.metric == "tts" || c.metric == "best"
}

// header is the column's title given the rows' K (0 when they differ):
// "Pass@1", "TTS@8", "Best@K", "K", "Instances".
func (c Column) header(k int) string {
	switch c.metric {
	case "pass@1":
		return "Pass@1"
	case "k":
		return "K"
	case "instances":
		return "Instances"
	}
	name := map[string]string{"tts": "TTS", "best": "Best"}[c.metric]
	switch {
	case c.n > 0:
		return fmt.Sprintf("%s@%d", name, c.n)
	case k > 0:
		return fmt.Sprintf("%s@%d", name, k)
	}
	return name + "@K"
}

// csvHeader is the machine name: the column as written, with k resolved
// when the rows share K.
func (c Column) csvHeader(k int) string {
	if c.fraction() && c.metric != "pass@1" && c.n == 0 && k > 0 {
		return fmt.Sprintf("%s@%d", c.metric, k)
	}
	return c.Name
}

// value is the row's number for the column.
func (c Column) value(e *tts.Eval) (float64, error) {
	switch c.metric {
	case "pass@1":
		return e.Pass1, nil
	case "k":
		return float64(e.K), nil
	case "instances":
		return float64(e.Instances), nil
	}
	if c.n == 0 || c.n == e.K && e.Curve == nil {
		if c.metric == "tts" {
			return e.TTS, nil
		}
		return e.Best, nil
	}
	p, err := e.At(c.n)
	if err != nil {
		return 0, fmt.Errorf("column %s: %w", c.Name, err)
	}
	if c.metric == "tts" {
		return p.TTS, nil
	}
	return p.Best, nil
}

// sharedK is the K all rows have, 0 when they differ.
func sharedK(rows []Row) int {
	k := rows[0].Eval.K
	for _, r := range rows[1:] {
		if r.Eval.K != k {
			return 0
		}
	}
	return k
}

// Table renders the rows as Markdown and CSV. Markdown shows fractions as
// percentages with one decimal (42.2); CSV holds the fractions as written
// in eval.json (0.422), K and instances as integers. A header says the
// metric and K: TTS@8 (TTS@K where the rows' K differ).
func Table(rows []Row, columns []string) (md, csvOut []byte, err error) {
	cols, err := ParseColumns(columns)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRows(rows); err != nil {
		return nil, nil, err
	}
	k := sharedK(rows)
	var mdB, csvB bytes.Buffer
	cw := csv.NewWriter(&csvB)
	mdHead, csvHead := []string{"Setting"}, []string{"row"}
	align := []string{"---"}
	for _, c := range cols {
		h := c.header(k)
		if c.fraction() {
			h += " (%)"
		}
		mdHead = append(mdHead, h)
		csvHead = append(csvHead, c.csvHeader(k))
		align = append(align, "---:")
	}
	mdRow(&mdB, mdHead)
	mdRow(&mdB, align)
	if err := cw.Write(csvHead); err != nil {
		return nil, nil, err
	}
	for _, r := range rows {
		mdCells, csvCells := []string{escapeCell(r.Label)}, []string{r.Label}
		for _, c := range cols {
			v, err := c.value(r.Eval)
			if err != nil {
				return nil, nil, fmt.Errorf("row %q: %w", r.Label, err)
			}
			if c.fraction() {
				mdCells = append(mdCells, strconv.FormatFloat(100*v, 'f', 1, 64))
				csvCells = append(csvCells, strconv.FormatFloat(v, 'f', -1, 64))
			} else {
				n := strconv.Itoa(int(v))
				mdCells = append(mdCells, n)
				csvCells = append(csvCells, n)
			}
		}
		mdRow(&mdB, mdCells)
		if err := cw.Write(csvCells); err != nil {
			return nil, nil, err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, nil, err
	}
	return mdB.Bytes(), csvB.Bytes(), nil
}

func mdRow(b *bytes.Buffer, cells []string) {
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
