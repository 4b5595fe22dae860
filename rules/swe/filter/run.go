package filter

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/legobuild/lego/rules/swe/format"
)

// File names in the output directory.
const (
	DataFile   = "trajectories.jsonl"
	ReportFile = "report.json"
)

// Run filters the trajectory files into outDir (DataFile and ReportFile),
// reading each as shape ("" = detect it from the file's first record) and
// writing the kept ones in lego's own shape. A record that is not a
// trajectory (not JSON, a field of the wrong type, a bad string) fails
// the run and nothing is written.
func Run(inputs []string, outDir string, o Options, shape string) (*Report, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if err := format.CheckShape(shape); err != nil {
		return nil, err
	}
	w, err := format.Create(filepath.Join(outDir, DataFile))
	if err != nil {
		return nil, err
	}
	rep, dedup := NewReport(), NewDedup()
	type item struct {
		line    []byte
		sum     uint64
		t       format.Trajectory // metadata only: messages dropped
		verdict Verdict
		where   string
		obs     bool
	}
	for _, in := range inputs {
		path := format.DataPath(in, DataFile)
		records, withObs := 0, 0
		read := shape
		layout, err := format.MapRecords(path, func(at format.Loc, b []byte) (item, error) {
			t, err := format.DecodeTrajectory(shape, at, b)
			if err != nil {
				return item{}, err
			}
			v := Judge(t, o)
			if v.Keep && v.Kind == SemiResolved {
				t.SemiResolved = true // found so by its patch: say it
			}
			it := item{verdict: v, where: format.Loc{File: filepath.Base(path), Unit: at.Unit, N: at.N}.String()}
			if v.Keep {
				it.line = append(t.AppendJSON(format.Line(len(b)+64)), '\n')
				// Duplicates are the same trajectory, whatever the layout
				// it came in.
				it.sum = Sum(it.line)
			}
			for i := range t.Messages {
				it.obs = it.obs || t.Messages[i].Role == "tool"
			}
			t.Free()
			it.t = *t
			return it, nil
		}, func(it item) error {
			records++
			if it.obs {
				withObs++
			}
			read = it.t.Shape
			v := it.verdict
			if v.Keep && dedup.Seen(it.sum, &it.t) {
				v = Verdict{Reason: "duplicate"}
			}
			rep.Add(v, it.where, it.t.InstanceID)
			if !v.Keep {
				return nil
			}
			_, err := w.Write(it.line)
			format.FreeLine(it.line)
			return err
		})
		if err != nil {
			w.Abort()
			return nil, err
		}
		if records > 0 && withObs == 0 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: no observation (tool output) in any of its %d records (%s, read as %s): no turn can be masked for an error; if they are of another shape, set trajectory_format (one of %s)",
				path, records, layout, read, strings.Join(format.Shapes, ", ")))
		}
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return rep, format.WriteJSON(filepath.Join(outDir, ReportFile), rep)
}
