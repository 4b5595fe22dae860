package tts

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadErrors(t *testing.T) {
	good := `{"name": "e", "k": 2, "instances": 1, "pass@1": 0.5, "tts@k": 1, "best@k": 1,
 "curve": [{"k": 1, "pass@1": 0.5, "tts": 0.5, "best": 0.5}, {"k": 2, "pass@1": 0.5, "tts": 1, "best": 1}],
 "per_instance": [{"instance_id": "a", "pass@1": 0.5, "tts": 1, "best": 1,
   "runs": [{"run": 0, "resolved": true, "predicted_score": 0.9, "turns": 10},
            {"run": 1, "resolved": false, "predicted_score": 0.2, "turns": 30}]}]}`
	for _, tc := range []struct {
		name, old, new, err string
	}{
		{"good", "", "", ""},
		{"k missing", `"k": 2, `, "", "field k: missing"},
		{"a bool as a string", `"resolved": true`, `"resolved": "yes"`, "field per_instance.runs.resolved: got JSON string, want bool (line 4)"},
		{"a fraction over 1", `"pass@1": 0.5, "tts@k"`, `"pass@1": 1.5, "tts@k"`, "field pass@1: 1.5 is not a fraction in [0, 1]"},
		{"a curve point over 1", `"tts": 1, "best": 1}]`, `"tts": 1.2, "best": 1}]`, "field curve[1].tts: 1.2 is not a fraction in [0, 1]"},
		{"curve out of order", `{"k": 2, "pass@1"`, `{"k": 3, "pass@1"`, "field curve[1].k: is 3, want 2"},
		{"a curve too short", `{"k": 1, "pass@1": 0.5, "tts": 0.5, "best": 0.5}, `, "", "field curve: 1 points, want one per k = 1..2"},
		{"runs over K", `"turns": 30}`, `"turns": 30}, {"run": 2, "turns": 3}`, "field per_instance[0].runs: 3 runs of instance a, more than k = 2"},
		{"instances disagree", `"instances": 1`, `"instances": 3`, "field per_instance: 1 entries, but instances is 3"},
		{"negative turns", `"turns": 30`, `"turns": -1`, "field per_instance[0].runs[1].turns: -1 is negative"},
		{"k zero", `"k": 2`, `"k": 0`, "field k: 0 rollouts per instance"},
		{"syntax", `"best@k": 1,`, `"best@k": 1,,`, "line 1: invalid character ','"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			text := good
			if tc.old != "" {
				if !strings.Contains(good, tc.old) {
					t.Fatalf("%q not in the good file", tc.old)
				}
				text = strings.Replace(good, tc.old, tc.new, 1)
			}
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			e, err := Read(dir)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if e.File != filepath.Join(dir, FileName) || e.K != 2 || len(e.PerInstance[0].Runs) != 2 {
					t.Errorf("read %+v", e)
				}
				return
			}
			want := filepath.Join(dir, FileName) + ": " + tc.err
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want %q", err, want)
			}
		})
	}
	if _, err := Read(filepath.Join(t.TempDir(), "none")); err == nil || !os.IsNotExist(err) {
		t.Errorf("a missing directory: %v", err)
	}
}

// What Write writes, Read reads back; the bytes are the same each time.
func TestWriteRoundTrip(t *testing.T) {
	e, err := Read("../paper/testdata/eval_masked")
	if err != nil {
		t.Fatal(err)
	}
	a, b := t.TempDir(), t.TempDir()
	if err := e.Write(a); err != nil {
		t.Fatal(err)
	}
	if err := e.Write(b); err != nil {
		t.Fatal(err)
	}
	ba, _ := os.ReadFile(filepath.Join(a, FileName))
	bb, _ := os.ReadFile(filepath.Join(b, FileName))
	if !bytes.Equal(ba, bb) {
		t.Error("two writes differ")
	}
	back, err := Read(filepath.Join(a, FileName)) // the file itself works too
	if err != nil {
		t.Fatal(err)
	}
	back.File, e.File = "", ""
	if !reflect.DeepEqual(back, e) {
		t.Error("read back differs")
	}
	e.Best = 2
	if err := e.Write(a); err == nil || !strings.Contains(err.Error(), "eval.json: field best@k") {
		t.Errorf("writing a bad eval: %v", err)
	}
}
