package curriculum

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/legobuild/lego/rules/swe/format"
)

// File names in the output directory (stages are stage1.jsonl, ...).
const (
	InfoFile      = "dataset_info.json"
	StatsFile     = "stats.json"
	HistogramFile = "turns.svg"
)

// BinFile names the data of bin k (0-based); StageDir names the folder of
// stage k, which holds hard links to its bins' files. LLaMA-Factory loads
// every file of a dataset folder, so the cumulative stages cost no copy:
// each example is written once.
func BinFile(k int) string  { return fmt.Sprintf("bin%d.jsonl", k+1) }
func StageDir(k int) string { return fmt.Sprintf("stage%d", k+1) }

// Run splits the SFT dataset in the directory in (a masked_dataset's
// output: dataset_info.json naming one data file) into stage datasets in
// outDir, with their dataset_info.json, stats and a histogram.
func Run(in, outDir, name string, bins []int, cumulative bool) (*Stats, error) {
	if err := CheckBins(bins); err != nil {
		return nil, err
	}
	src, info, err := readInfo(in)
	if err != nil {
		return nil, err
	}
	ws := make([]*format.Writer, len(bins))
	abort := func() {
		for _, w := range ws {
			if w != nil {
				w.Abort()
			}
		}
	}
	for k := range bins {
		if ws[k], err = format.Create(filepath.Join(outDir, BinFile(k))); err != nil {
			abort()
			return nil, err
		}
	}
	stats := NewStats(bins, cumulative)
	type item struct {
		line []byte
		h    format.SFTHeader
	}
	tags := info.Tags
	if c := info.Columns["messages"]; c != "" {
		tags.Messages = c
	}
	_, err = format.MapRecords(src, func(at format.Loc, b []byte) (item, error) {
		h, err := format.DecodeSFTHeader(tags, at, b)
		if err != nil {
			return item{}, err
		}
		// A record of an array or a Parquet row becomes a line, and one
		// that spans lines is put on one.
		if at.Unit != "" || bytes.IndexByte(b, '\n') >= 0 {
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return item{}, at.Err("", "%v", err)
			}
			b = buf.Bytes()
		}
		return item{b, h}, nil
	}, func(it item) error {
		stats.Add(it.h.Turns, it.h.Resolved)
		b := Bin(it.h.Turns, bins)
		if b < 0 {
			return nil
		}
		if _, err := ws[b].Write(it.line); err != nil {
			return err
		}
		_, err := ws[b].Write([]byte{'\n'})
		return err
	})
	if err != nil {
		abort()
		return nil, err
	}
	for _, w := range ws {
		if err := w.Commit(); err != nil {
			return nil, err
		}
	}
	infos := map[string]format.DatasetInfo{}
	for k := range bins {
		dir := filepath.Join(outDir, StageDir(k))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		for b := range bins {
			if !slices.Contains(Stages(b, len(bins), cumulative), k) {
				continue
			}
			if err := os.Link(filepath.Join(outDir, BinFile(b)), filepath.Join(dir, BinFile(b))); err != nil {
				return nil, err
			}
		}
		e := info
		e.FileName = StageDir(k)
		infos[fmt.Sprintf("%s_stage%d", name, k+1)] = e
	}
	stats.Finish()
	if err := format.WriteJSON(filepath.Join(outDir, InfoFile), infos); err != nil {
		return nil, err
	}
	if err := format.WriteJSON(filepath.Join(outDir, StatsFile), stats); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(outDir, HistogramFile))
	if err != nil {
		return nil, err
	}
	err = stats.Histogram(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return stats, err
}

// readInfo finds the one dataset a dataset_info.json in dir describes.
func readInfo(dir string) (string, format.DatasetInfo, error) {
	p := filepath.Join(dir, InfoFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", format.DatasetInfo{}, fmt.Errorf("reading the input dataset: %w", err)
	}
	var infos map[string]format.DatasetInfo
	if err := json.Unmarshal(b, &infos); err != nil {
		return "", format.DatasetInfo{}, fmt.Errorf("%s: %v", p, err)
	}
	if len(infos) != 1 {
		return "", format.DatasetInfo{}, fmt.Errorf("%s: describes %d datasets, want one", p, len(infos))
	}
	for _, e := range infos {
		return filepath.Join(dir, e.FileName), e, nil
	}
	panic("unreachable")
}
