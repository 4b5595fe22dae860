package mask

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/legobuild/lego/rules/swe/format"
)

// File names in the output directory.
const (
	DataFile  = "data.jsonl"
	InfoFile  = "dataset_info.json"
	StatsFile = "stats.json"
	// DecisionsFile says, per example, each turn's decision and why: what
	// a user checks a pattern against.
	DecisionsFile = "decisions.jsonl"
)

// Decisions is one line of DecisionsFile.
type Decisions struct {
	InstanceID string `json:"instance_id"`
	At         string `json:"at"` // where the trajectory was in its file
	Turns      []Turn `json:"turns"`
}

// Turn is one turn's decision.
type Turn struct {
	Masked bool   `json:"masked"`
	Reason string `json:"reason,omitempty"`
	Exempt string `json:"exempt,omitempty"`
}

// Run builds the masked SFT dataset of the trajectories at in (a file of
// any layout and shape format reads, or a filter's output directory)
// into outDir: DataFile in format sft, InfoFile registering it as dataset
// name, and StatsFile. shape "" detects each file's shape from its first
// record. What the user should know (no observation found, mixed tool
// schemas) is in the stats' warnings, each also returned.
func Run(in, outDir, name, sft, shape string, m *Masker) (*Stats, error) {
	if err := format.CheckFormat(sft); err != nil {
		return nil, err
	}
	if err := format.CheckShape(shape); err != nil {
		return nil, err
	}
	path := format.DataPath(in, "trajectories.jsonl")
	w, err := format.Create(filepath.Join(outDir, DataFile))
	if err != nil {
		return nil, err
	}
	dw, err := format.Create(filepath.Join(outDir, DecisionsFile))
	if err != nil {
		w.Abort()
		return nil, err
	}
	stats := &Stats{}
	type item struct {
		line  []byte
		why   []byte
		ds    []Decision
		obs   int
		tools []byte
		shape string
	}
	seen := ""
	_, err = format.MapRecords(path, func(at format.Loc, b []byte) (item, error) {
		t, err := format.DecodeTrajectory(shape, at, b)
		if err != nil {
			return item{}, err
		}
		if why := t.Check(); why != "" {
			return item{}, at.Err("messages", "%s", why)
		}
		ds := m.Decide(t)
		e, err := Build(t, ds)
		if err != nil {
			return item{}, at.Err("messages", "%s", err)
		}
		line := e.AppendJSON(format.Line(len(b)+len(b)/8), sft)
		obs := 0
		for i := range t.Messages {
			if t.Messages[i].Role == "tool" {
				obs++
			}
		}
		dec := Decisions{InstanceID: t.InstanceID, At: at.String(), Turns: make([]Turn, len(ds))}
		for i, d := range ds {
			dec.Turns[i] = Turn{d.Masked, d.Reason, d.Exempt}
		}
		why, err := json.Marshal(dec)
		if err != nil {
			return item{}, err
		}
		it := item{append(line, '\n'), append(why, '\n'), ds, obs, t.Tools, t.Shape}
		t.Free()
		return it, nil
	}, func(it item) error {
		stats.Add(it.ds)
		stats.Observations += it.obs
		stats.ToolSets[toolSet(it.tools)]++
		seen = it.shape
		if _, err := dw.Write(it.why); err != nil {
			return err
		}
		_, err := w.Write(it.line)
		format.FreeLine(it.line)
		return err
	})
	if err != nil {
		w.Abort()
		dw.Abort()
		return nil, err
	}
	if err := w.Commit(); err != nil {
		dw.Abort()
		return nil, err
	}
	if err := dw.Commit(); err != nil {
		return nil, err
	}
	if stats.Examples > 0 && stats.Observations == 0 {
		stats.Warnings = append(stats.Warnings, fmt.Sprintf("%s: no observation (tool output) in any of its %d trajectories, read as %s: no turn could be masked for an error; if the records are of another shape, set trajectory_format (one of %s)",
			path, stats.Examples, seen, strings.Join(format.Shapes, ", ")))
	}
	if len(stats.ToolSets) > 1 {
		sets := slices.Sorted(maps.Keys(stats.ToolSets))
		stats.Warnings = append(stats.Warnings, fmt.Sprintf("%s: the trajectories were recorded with %d different sets of tool schemas (%s): a model trained on them learns all of them",
			path, len(sets), strings.Join(sets, "; ")))
	}
	if err := format.WriteJSON(filepath.Join(outDir, InfoFile), map[string]format.DatasetInfo{name: format.InfoFor(DataFile, sft)}); err != nil {
		return nil, err
	}
	return stats, format.WriteJSON(filepath.Join(outDir, StatsFile), stats)
}

// toolSet names a list of tool schemas: its tools' names and a digest.
func toolSet(tools []byte) string {
	if len(tools) == 0 {
		return "none"
	}
	names := make([]string, 0, 8)
	for n := range toolNames(tools) {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprintf("%s #%08x", strings.Join(names, ","), uint32(xxhash.Sum64(tools)))
}
