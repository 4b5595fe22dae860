package filter

import (
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/legobuild/lego/rules/swe/format"
)

// File names in the output directory.
const (
	DataFile   = "trajectories.jsonl"
	ReportFile = "report.json"
)

// Run filters the trajectory files into outDir (DataFile and ReportFile).
// A line that is not a trajectory fails the run and nothing is written.
func Run(inputs []string, outDir string, o Options) (*Report, error) {
	if err := o.Check(); err != nil {
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
	}
	for _, in := range inputs {
		path := format.DataPath(in, DataFile)
		r, err := format.Open(path)
		if err != nil {
			w.Abort()
			return nil, err
		}
		err = format.Map(r, func(n int, b []byte) (item, error) {
			// Metadata and message shapes only: the content is copied
			// through as it is, never decoded.
			t, err := format.TrajectoryMeta(path, n, b)
			if err != nil {
				return item{}, err
			}
			it := item{line: b, sum: Sum(b), verdict: Judge(t, o), where: fmt.Sprintf("%s:%d", filepath.Base(path), n)}
			if it.verdict.Keep && it.verdict.Kind == SemiResolved && !t.SemiResolved {
				// Found semi-resolved by its patch: say so in the output,
				// as a last member (the last of a repeated key wins).
				end := bytes.LastIndexByte(b, '}')
				it.line = append(append(append([]byte(nil), b[:end]...), `,"semi_resolved":true`...), b[end:]...)
			}
			t.Messages = nil
			it.t = *t
			return it, nil
		}, func(it item) error {
			v := it.verdict
			if v.Keep && dedup.Seen(it.sum, &it.t) {
				v = Verdict{Reason: "duplicate"}
			}
			rep.Add(v, it.where, it.t.InstanceID)
			if !v.Keep {
				return nil
			}
			if _, err := w.Write(it.line); err != nil {
				return err
			}
			_, err := w.Write([]byte{'\n'})
			return err
		})
		r.Close()
		if err != nil {
			w.Abort()
			return nil, err
		}
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return rep, format.WriteJSON(filepath.Join(outDir, ReportFile), rep)
}
