package mask_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/legobuild/lego/rules/swe/curriculum"
	"github.com/legobuild/lego/rules/swe/filter"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/mask"
)

const shapes = "../format/testdata/shapes"

// want is testdata/shapes/want.json: per fixture file, per instance, the
// decision for each turn, written by hand from the fixtures.
type want map[string]map[string][]struct {
	Turn   int    `json:"turn"`
	Masked bool   `json:"masked"`
	Reason string `json:"reason"`
	Exempt string `json:"exempt"`
}

func readWant(t *testing.T) want {
	var w want
	if err := format.ReadJSON(filepath.Join(shapes, "want.json"), &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// records are a fixture's records: its lines, or the one document.
func records(t *testing.T, path string) [][]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".traj") {
		return [][]byte{b}
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	return out
}

// variants writes a fixture's records in each layout users publish them
// in: as it is, a pretty-printed JSON array, gzip and zstd compressed.
// It returns the paths by layout.
func variants(t *testing.T, dir, name string, recs [][]byte, raw []byte) map[string]string {
	base := strings.TrimSuffix(strings.TrimSuffix(name, ".jsonl"), ".traj")
	out := map[string]string{}
	write := func(kind, file string, b []byte) {
		p := filepath.Join(dir, kind, file)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out[kind] = p
	}
	write("as-is", name, raw)
	var arr bytes.Buffer
	arr.WriteString("[\n")
	for i, r := range recs {
		if i > 0 {
			arr.WriteString(",\n")
		}
		json.Indent(&arr, r, "  ", "  ")
	}
	arr.WriteString("\n]\n")
	write("array", base+".json", arr.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	write("gzip", name+".gz", gz.Bytes())
	zs, _ := zstd.NewWriter(nil)
	write("zstd", base+".json.zst", zs.EncodeAll(arr.Bytes(), nil))
	// Parquet: see TestPublishedTrajectoriesBuild in cmd/lego.
	return out
}

// Every fixture of every published shape, in every layout, gets the
// decisions written down for it turn by turn, through the masking alone
// (all records) and through filter, masking and curriculum (the kept
// ones); the exported tools are the records' own.
func TestPublishedShapes(t *testing.T) {
	w := readWant(t)
	m, err := mask.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) < 6 {
		t.Fatalf("want.json covers %d files", len(w))
	}
	for file, insts := range w {
		src := filepath.Join(shapes, file)
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		recs := records(t, src)
		tools := map[string]string{}
		for _, r := range recs {
			tr, err := format.DecodeTrajectory("", format.Loc{File: src}, r)
			if err != nil {
				t.Fatal(err)
			}
			tools[tr.InstanceID] = string(tr.Tools)
		}
		for layout, p := range variants(t, t.TempDir(), file, recs, raw) {
			if layout != "as-is" && strings.HasSuffix(file, ".traj") {
				// The id is the .traj file's name: only as it is.
				continue
			}
			name := file + " " + layout
			out := filepath.Join(t.TempDir(), "m")
			st, err := mask.Run(p, out, "m", format.ShareGPT, "", m)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got := decisions(t, out)
			if len(got) != len(insts) {
				t.Errorf("%s: %d examples, want %d", name, len(got), len(insts))
			}
			for id, turns := range insts {
				g, ok := got[id]
				if !ok {
					t.Errorf("%s: no example of %s", name, id)
					continue
				}
				if len(g.Turns) != len(turns) {
					t.Errorf("%s %s: %d turns, want %d", name, id, len(g.Turns), len(turns))
					continue
				}
				for i, wt := range turns {
					if gt := g.Turns[i]; gt.Masked != wt.Masked || gt.Reason != wt.Reason || gt.Exempt != wt.Exempt {
						t.Errorf("%s %s turn %d: %+v, want %+v", name, id, wt.Turn, gt, wt)
					}
				}
			}
			if st.Observations == 0 || len(st.Warnings) != 0 {
				t.Errorf("%s: %d observations, warnings %v", name, st.Observations, st.Warnings)
			}
			exportedTools(t, name, out, tools)

			// Through the filter (resolved and semi-resolved kept) and the
			// curriculum: the same decisions for what was kept.
			f, mo, c := filepath.Join(t.TempDir(), "f"), filepath.Join(t.TempDir(), "m"), filepath.Join(t.TempDir(), "c")
			rep, err := filter.Run([]string{p}, f, filter.Options{Keep: []string{filter.Resolved, filter.SemiResolved}}, "")
			if err != nil {
				t.Fatalf("%s: filter: %v", name, err)
			}
			if _, err := mask.Run(f, mo, "m", format.OpenAI, "", m); err != nil {
				t.Fatalf("%s: mask after filter: %v", name, err)
			}
			kept := decisions(t, mo)
			if len(kept) != rep.Kept || rep.Read != len(insts) || rep.Kept == rep.Read && !strings.HasSuffix(file, ".traj") {
				t.Errorf("%s: filter kept %d of %d, masking got %d", name, rep.Kept, rep.Read, len(kept))
			}
			for id, k := range kept {
				if fmt.Sprint(k.Turns) != fmt.Sprint(got[id].Turns) {
					t.Errorf("%s %s: after the filter %v, before %v", name, id, k.Turns, got[id].Turns)
				}
			}
			cst, err := curriculum.Run(mo, c, "c", []int{5, 10, 100}, true)
			if err != nil {
				t.Fatalf("%s: curriculum: %v", name, err)
			}
			n := 0
			for id := range kept {
				turns := len(insts[id])
				n++
				if curriculum.Bin(turns, []int{5, 10, 100}) < 0 {
					t.Errorf("%s %s: %d turns past the bins", name, id, turns)
				}
			}
			if sum := cst.PerBin[0] + cst.PerBin[1] + cst.PerBin[2]; sum != n {
				t.Errorf("%s: curriculum binned %d of %d", name, sum, n)
			}
		}
	}
}

func decisions(t *testing.T, dir string) map[string]mask.Decisions {
	out := map[string]mask.Decisions{}
	for _, r := range records(t, filepath.Join(dir, mask.DecisionsFile)) {
		var d mask.Decisions
		if err := json.Unmarshal(r, &d); err != nil {
			t.Fatal(err)
		}
		out[d.InstanceID] = d
	}
	return out
}

// exportedTools checks each example's tools column is its record's
// schemas.
func exportedTools(t *testing.T, name, dir string, tools map[string]string) {
	for _, r := range records(t, filepath.Join(dir, mask.DataFile)) {
		var e struct {
			InstanceID string `json:"instance_id"`
			Tools      string `json:"tools"`
		}
		json.Unmarshal(r, &e)
		want := tools[e.InstanceID]
		if e.Tools != want {
			t.Errorf("%s %s: tools %.80q, want %.80q", name, e.InstanceID, e.Tools, want)
		}
	}
}

// A set whose observations cannot be found is warned about, naming the
// file, by the filter and the masking.
func TestNoObservationWarns(t *testing.T) {
	src := filepath.Join(shapes, "noobs.jsonl")
	rep, err := filter.Run([]string{src}, filepath.Join(t.TempDir(), "f"), filter.Options{Keep: []string{filter.Resolved}}, "")
	if err != nil || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "noobs.jsonl: no observation") {
		t.Errorf("filter: %v, %+v", err, rep)
	}
	m, _ := mask.New(nil, nil)
	in := filepath.Join(t.TempDir(), "chat.jsonl")
	os.WriteFile(in, []byte(`{"instance_id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}`+"\n"), 0o644)
	st, err := mask.Run(in, filepath.Join(t.TempDir(), "m"), "m", format.ShareGPT, "", m)
	if err != nil || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "chat.jsonl: no observation") {
		t.Errorf("mask: %v, %+v", err, st)
	}
}
