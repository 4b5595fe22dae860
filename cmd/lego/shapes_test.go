package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/format"
)

// Published trajectories go through trajectory_filter, masked_dataset and
// curriculum as BUILD targets in each layout users bring: JSON Lines, a
// JSON array, gzip-compressed, Parquet, SWE-agent's .traj. Each masked
// turn is the one want.json names, for the reason it names; the tools
// column is the records' own; a set lego finds no observation in builds
// with a warning naming its file.
func TestPublishedTrajectoriesBuild(t *testing.T) {
	root, cache := t.TempDir(), t.TempDir()
	src := "../../rules/swe/format/testdata/shapes"
	var want map[string]map[string][]struct {
		Masked bool   `json:"masked"`
		Reason string `json:"reason"`
		Exempt string `json:"exempt"`
	}
	if err := format.ReadJSON(filepath.Join(src, "want.json"), &want); err != nil {
		t.Fatal(err)
	}
	build := ""
	files := map[string]string{"WORKSPACE": ""}
	type target struct{ name, file string }
	var targets []target
	for _, file := range []string{"messages.jsonl", "openhands_events.jsonl", "chatml.jsonl", "nebius.jsonl", "sweagent.jsonl"} {
		raw, err := os.ReadFile(filepath.Join(src, file))
		if err != nil {
			t.Fatal(err)
		}
		var recs [][]byte
		for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
			recs = append(recs, l)
		}
		base := strings.TrimSuffix(file, ".jsonl")
		files["data/"+file] = string(raw)
		var arr bytes.Buffer
		arr.WriteString("[")
		for i, r := range recs {
			if i > 0 {
				arr.WriteString(",\n")
			}
			json.Indent(&arr, r, "", " ")
		}
		arr.WriteString("]")
		files["data/"+base+".json"] = arr.String()
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(raw)
		zw.Close()
		files["data/"+base+".jsonl.gz"] = gz.String()
		pq := filepath.Join(t.TempDir(), base+".parquet")
		if err := format.WriteParquet(pq, format.Columnar(recs), 1); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(pq)
		files["data/"+base+".parquet"] = string(b)
		for _, v := range []string{file, base + ".json", base + ".jsonl.gz", base + ".parquet"} {
			name := strings.NewReplacer(".", "_").Replace(v)
			targets = append(targets, target{name, file})
			build += "masked_dataset(name = '" + name + "', trajectories = 'data/" + v + "')\n"
			build += "trajectory_filter(name = '" + name + "_f', trajectories = ['data/" + v + "'])\n"
			build += "masked_dataset(name = '" + name + "_fm', trajectories = ':" + name + "_f')\n"
			build += "curriculum(name = '" + name + "_c', dataset = ':" + name + "_fm', bins = [5, 10, 100])\n"
		}
	}
	// SWE-agent's own file: one pretty-printed document, named after
	// its instance (it says nothing of resolution: only masked).
	traj, err := os.ReadFile(filepath.Join(src, "astropy__astropy-14182.traj"))
	if err != nil {
		t.Fatal(err)
	}
	files["data/astropy__astropy-14182.traj"] = string(traj)
	targets = append(targets, target{"traj", "astropy__astropy-14182.traj"})
	build += "masked_dataset(name = 'traj', trajectories = 'data/astropy__astropy-14182.traj')\n"
	noobs, _ := os.ReadFile(filepath.Join(src, "noobs.jsonl"))
	files["data/noobs.jsonl"] = string(noobs)
	build += "trajectory_filter(name = 'noobs', trajectories = ['data/noobs.jsonl'])\n"
	files["BUILD"] = build
	writeFiles(t, root, files)
	r := mustLego(t, root, "build", "//...", "--cache_dir="+cache)
	if !strings.Contains(r.stderr, "WARNING: //:noobs: data/noobs.jsonl: no observation") {
		t.Errorf("no warning for the set without observations:\n%s", r.stderr)
	}
	if strings.Count(r.stderr, "WARNING:") != 1 {
		t.Errorf("warnings other than the one expected:\n%s", r.stderr)
	}
	for _, tg := range targets {
		got := map[string][]struct {
			Masked bool   `json:"masked"`
			Reason string `json:"reason"`
			Exempt string `json:"exempt"`
		}{}
		for _, l := range strings.Split(strings.TrimSpace(mustRead(t, filepath.Join(root, "lego-out", tg.name, "decisions.jsonl"))), "\n") {
			var d struct {
				InstanceID string `json:"instance_id"`
				Turns      []struct {
					Masked bool   `json:"masked"`
					Reason string `json:"reason"`
					Exempt string `json:"exempt"`
				} `json:"turns"`
			}
			if err := json.Unmarshal([]byte(l), &d); err != nil {
				t.Fatal(err)
			}
			got[d.InstanceID] = append(got[d.InstanceID][:0], d.Turns...)
		}
		for id, turns := range want[tg.file] {
			g := got[id]
			if len(g) != len(turns) {
				t.Errorf("%s %s: %d turns, want %d", tg.name, id, len(g), len(turns))
				continue
			}
			for i := range turns {
				if g[i] != turns[i] {
					t.Errorf("%s %s turn %d: %+v, want %+v", tg.name, id, i+1, g[i], turns[i])
				}
			}
		}
		// The tools column is what the records carry.
		var recTools = map[string]string{}
		recs := strings.Split(strings.TrimSpace(files["data/"+tg.file]), "\n")
		if strings.HasSuffix(tg.file, ".traj") {
			recs = []string{files["data/"+tg.file]}
		}
		for _, l := range recs {
			tr, err := format.DecodeTrajectory("", format.Loc{File: tg.file}, []byte(l))
			if err != nil {
				t.Fatal(err)
			}
			recTools[tr.InstanceID] = string(tr.Tools)
		}
		for _, l := range strings.Split(strings.TrimSpace(mustRead(t, filepath.Join(root, "lego-out", tg.name, "data.jsonl"))), "\n") {
			var e struct {
				InstanceID string `json:"instance_id"`
				Tools      string `json:"tools"`
			}
			json.Unmarshal([]byte(l), &e)
			var got, want any
			json.Unmarshal([]byte(e.Tools), &got)
			json.Unmarshal([]byte(recTools[e.InstanceID]), &want)
			if !reflect.DeepEqual(got, want) || (e.Tools == "") != (recTools[e.InstanceID] == "") {
				t.Errorf("%s %s: tools %.60q, want the record's %.60q", tg.name, e.InstanceID, e.Tools, recTools[e.InstanceID])
			}
		}
		if len(got) != len(want[tg.file]) {
			t.Errorf("%s: %d examples, want %d", tg.name, len(got), len(want[tg.file]))
		}
		if tg.name == "traj" {
			continue
		}
		if st := mustRead(t, filepath.Join(root, "lego-out", tg.name+"_c", "stats.json")); !strings.Contains(st, `"examples_per_bin"`) {
			t.Errorf("%s: curriculum stats %s", tg.name, st)
		}
	}
}
