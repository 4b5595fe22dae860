package mask_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/curriculum"
	"github.com/legobuild/lego/rules/swe/filter"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/mask"
)

// The filter, the masking and the curriculum agree on every record: one
// the filter finds malformed the masking refuses, and one it keeps the
// masking turns into the same example as it does from the source, with
// the turn count the filter wrote, which the curriculum bins it by.
func FuzzDataPlaneAgrees(f *testing.F) {
	for _, file := range []string{"messages.jsonl", "chatml.jsonl", "nebius.jsonl", "openhands_events.jsonl", "sweagent.jsonl", "noobs.jsonl"} {
		b, err := os.ReadFile(filepath.Join(shapes, file))
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f.Add([]byte(l))
		}
	}
	for _, s := range []string{
		`{"instance_id": "a", "resolved": true, "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}, {"role": "assistant", "content": "z"}]}`,
		`{"instance_id": "a", "Resolved": true, "turns": 99, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}, {"role": "assistant", "content": null, "tool_calls": null}]}`,
		"{\"instance_id\": \"a\xff\", \"resolved\": true, \"messages\": []}",
	} {
		f.Add([]byte(s))
	}
	m, err := mask.New(nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	bins := []int{2, 5, 1000}
	f.Fuzz(func(t *testing.T, rec []byte) {
		if strings.ContainsAny(string(rec), "\n\r") {
			return // one record, one line
		}
		os.RemoveAll(filepath.Join(dir, "out"))
		in := filepath.Join(dir, "in.jsonl")
		if err := os.WriteFile(in, append(rec, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		out := func(s string) string { return filepath.Join(dir, "out", s) }
		rep, ferr := filter.Run([]string{in}, out("f"), filter.Options{Keep: []string{filter.Resolved, filter.SemiResolved}}, "")
		_, merr := mask.Run(in, out("m"), "m", format.ShareGPT, "", m)
		if ferr != nil {
			if merr == nil {
				t.Fatalf("the filter refused the record (%v), the masking did not", ferr)
			}
			return
		}
		if rep.Dropped["malformed"] > 0 {
			if merr == nil {
				t.Fatalf("the filter found the record malformed (%v), the masking took it", rep.Examples)
			}
			return
		}
		if rep.Kept == 0 {
			return
		}
		if merr != nil && !strings.Contains(merr.Error(), "no assistant turn after a prompt") {
			t.Fatalf("the filter kept the record, the masking refused it: %v", merr)
		}
		if merr != nil {
			return
		}
		// From the filter's output: the same example, the same turns.
		if _, err := mask.Run(out("f"), out("fm"), "m", format.ShareGPT, "", m); err != nil {
			t.Fatalf("the masking refused the filter's output: %v", err)
		}
		direct, _ := os.ReadFile(out("m/" + mask.DataFile))
		after, _ := os.ReadFile(out("fm/" + mask.DataFile))
		if string(direct) != string(after) {
			t.Fatalf("masked from the source\n%s\nfrom the filter's output\n%s", direct, after)
		}
		var kept struct{ Turns int }
		fb, _ := os.ReadFile(out("f/" + filter.DataFile))
		json.Unmarshal(fb, &kept)
		var ex struct{ Turns int }
		json.Unmarshal(after, &ex)
		if kept.Turns != ex.Turns {
			t.Fatalf("the filter wrote %d turns, the masking %d", kept.Turns, ex.Turns)
		}
		st, err := curriculum.Run(out("fm"), out("c"), "c", bins, false)
		if err != nil {
			t.Fatalf("the curriculum refused the masking's output: %v", err)
		}
		if b := curriculum.Bin(kept.Turns, bins); b >= 0 && st.PerBin[b] != 1 || b < 0 && st.OverMax != 1 {
			t.Fatalf("%d turns, binned %v (over %d)", kept.Turns, st.PerBin, st.OverMax)
		}
	})
}
