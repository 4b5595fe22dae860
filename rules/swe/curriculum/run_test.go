package curriculum

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/mask"
)

// Stage k is a folder holding bins 1..k, each bin written once and linked.
func TestRunWritesStageFolders(t *testing.T) {
	dir := t.TempDir()
	w, err := format.Create(filepath.Join(dir, "traj.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	format.Generate(w, 80, 2)
	w.Commit()
	m, _ := mask.New(nil, nil)
	if _, err := mask.Run(filepath.Join(dir, "traj.jsonl"), filepath.Join(dir, "masked"), "masked", format.OpenAI, "", m); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "stages")
	st, err := Run(filepath.Join(dir, "masked"), out, "cur", DefaultBins, true)
	if err != nil {
		t.Fatal(err)
	}
	var infos map[string]format.DatasetInfo
	b, _ := os.ReadFile(filepath.Join(out, InfoFile))
	if err := json.Unmarshal(b, &infos); err != nil {
		t.Fatal(err)
	}
	for k := range DefaultBins {
		info, ok := infos["cur_stage"+string(rune('1'+k))]
		if !ok || info.FileName != StageDir(k) || info.Columns["messages"] != "messages" {
			t.Fatalf("stage %d info %+v", k+1, info)
		}
		lines := 0
		entries, _ := os.ReadDir(filepath.Join(out, info.FileName))
		if len(entries) != k+1 {
			t.Errorf("stage %d holds %d files", k+1, len(entries))
		}
		for _, e := range entries {
			data, _ := os.ReadFile(filepath.Join(out, info.FileName, e.Name()))
			lines += bytes.Count(data, []byte("\n"))
			a, _ := os.Stat(filepath.Join(out, info.FileName, e.Name()))
			bin, _ := os.Stat(filepath.Join(out, e.Name()))
			if !os.SameFile(a, bin) {
				t.Errorf("stage %d: %s is a copy, not a link", k+1, e.Name())
			}
		}
		if lines != st.PerStage[k] {
			t.Errorf("stage %d: %d examples, stats say %d", k+1, lines, st.PerStage[k])
		}
	}
	if st.PerStage[2] != 80-st.OverMax {
		t.Errorf("the last cumulative stage holds %d of %d", st.PerStage[2], 80)
	}
}
