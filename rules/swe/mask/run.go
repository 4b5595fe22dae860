package mask

import (
	"path/filepath"

	"github.com/legobuild/lego/rules/swe/format"
)

// File names in the output directory.
const (
	DataFile  = "data.jsonl"
	InfoFile  = "dataset_info.json"
	StatsFile = "stats.json"
)

// Run builds the masked SFT dataset of the trajectories at in (a file, or
// a filter's output directory) into outDir: DataFile in format sft,
// InfoFile registering it as dataset name, and StatsFile.
func Run(in, outDir, name, sft string, m *Masker) (*Stats, error) {
	if err := format.CheckFormat(sft); err != nil {
		return nil, err
	}
	path := format.DataPath(in, "trajectories.jsonl")
	r, err := format.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	w, err := format.Create(filepath.Join(outDir, DataFile))
	if err != nil {
		return nil, err
	}
	stats := &Stats{}
	type item struct {
		line []byte
		ds   []Decision
	}
	err = format.Map(r, func(n int, b []byte) (item, error) {
		t, err := format.DecodeForSFT(path, n, b)
		if err != nil {
			return item{}, err
		}
		if why := t.Check(); why != "" {
			return item{}, &format.LineError{File: path, Line: n, Field: "messages", Msg: why}
		}
		ds := m.Decide(t)
		e, err := Build(t, ds)
		if err != nil {
			return item{}, &format.LineError{File: path, Line: n, Field: "messages", Msg: err.Error()}
		}
		line := e.AppendJSON(make([]byte, 0, len(b)+len(b)/8), sft)
		return item{append(line, '\n'), ds}, nil
	}, func(it item) error {
		stats.Add(it.ds)
		_, err := w.Write(it.line)
		return err
	})
	if err != nil {
		w.Abort()
		return nil, err
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	if err := format.WriteJSON(filepath.Join(outDir, InfoFile), map[string]format.DatasetInfo{name: format.InfoFor(DataFile, sft)}); err != nil {
		return nil, err
	}
	return stats, format.WriteJSON(filepath.Join(outDir, StatsFile), stats)
}
