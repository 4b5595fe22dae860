package format

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// trajectorySeeds are JSONL lines, small ones: the fuzzer minimizes what
// it finds interesting, which takes long for a generated 30 KB trajectory.
func trajectorySeeds() []string {
	return append([]string{},
		`{"instance_id": "org__repo-1", "resolved": false, "semi_resolved": true, "turns": 1, "teacher": "t", "seed": 4, "patch": "--- a/x\n+++ b/x\n", "gold_patch": "g", "messages": [{"role": "system", "content": "You are"}, {"role": "user", "content": "Fix"}, {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "str_replace_editor", "arguments": "{\"path\": \"x\"}"}}]}, {"role": "tool", "tool_call_id": "call_1", "name": "str_replace_editor", "content": "ok"}]}`,
		`{"instance_id": "a\u00e9\ud83d\ude00\/", "resolved": true, "turns": 2, "seed": -3, "messages": [{"role": "user", "content": "<b>\b\f\t\u0001 \"q\" \\"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "execute_bash", "arguments": "{\"command\": \"ls\"}"}}]}, {"role": "tool", "tool_call_id": "c", "name": "execute_bash", "content": "lone \ud800 surrogate"}]}`,
		`{"instance_id": "x", "messages": []}`,
		`{"instance_id": "x", "messages": null, "resolved": null, "turns": null}`,
		`{"turns": 01}`, `{"turns": +1}`, `{"turns": -0}`, `{"turns": 1e2}`, `{"seed": 99999999999999999999}`,
		"{\"patch\": \"tab\there\"}", `{"instance_id": "a"} trailing`, `{"messages": [{"role": "a"}], "messages": [{"content": "b"}]}`,
		`{"INSTANCE_ID": "upper"}`, `{"instance_\u0069d": "escaped key"}`, `{"messages": [null]}`, `[]`, ``, `{`, `{"a":}`,
	)
}

// The fast decoders give exactly what encoding/json gives: the same
// trajectory, or an error (a *LineError naming the file and line) when it
// gives one.
func FuzzDecodeTrajectory(f *testing.F) {
	for _, s := range trajectorySeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want Trajectory
		werr := DecodeLine("f.jsonl", 7, b, &want)
		wantJSON, _ := json.Marshal(&want)
		for _, lazy := range []bool{false, true} {
			got, err := decode("f.jsonl", 7, b, lazy)
			if (err == nil) != (werr == nil) {
				t.Fatalf("lazy=%v: error %v, encoding/json's %v", lazy, err, werr)
			}
			if err != nil {
				var le *LineError
				if !errors.As(err, &le) || le.File != "f.jsonl" || le.Line != 7 || got != nil {
					t.Fatalf("lazy=%v: error %#v with %v", lazy, err, got)
				}
				continue
			}
			if lazy {
				// Raw text stands for the content: compare what it decodes to.
				if len(got.Messages) != len(want.Messages) {
					t.Fatalf("lazy: %d messages, want %d", len(got.Messages), len(want.Messages))
				}
				for i := range got.Messages {
					m := &got.Messages[i]
					if m.Raw != nil {
						m.Content, m.Raw = m.Raw.String(), nil
					}
				}
			}
			if gotJSON, _ := json.Marshal(got); !bytes.Equal(gotJSON, wantJSON) {
				t.Fatalf("lazy=%v: decoded to\n%s\nencoding/json gives\n%s", lazy, gotJSON, wantJSON)
			}
		}
	})
}

// The skimming readers never panic, and fail with a *LineError; where the
// fast decoder reads a line whole, TrajectoryMeta reads the same metadata.
func FuzzScanLine(f *testing.F) {
	for _, s := range trajectorySeeds() {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"conversations": [{"value": "x\"}"}], "instance_id": "i", "resolved": false, "turns": 42}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		lineErr := func(what string, err error) {
			t.Helper()
			var le *LineError
			if !errors.As(err, &le) || le.File != "f.jsonl" || le.Line != 3 {
				t.Fatalf("%s: error %#v", what, err)
			}
		}
		meta, err := TrajectoryMeta("f.jsonl", 3, b)
		if err != nil {
			lineErr("TrajectoryMeta", err)
		}
		if _, err := SFTHeaderOf("f.jsonl", 3, b); err != nil {
			lineErr("SFTHeaderOf", err)
		}
		full, ferr := decodeFast(b, false)
		if ferr != nil {
			return
		}
		if err != nil {
			t.Fatalf("TrajectoryMeta: %v, but the line decodes", err)
		}
		if meta.InstanceID != full.InstanceID || meta.Resolved != full.Resolved || meta.Turns != full.Turns || meta.Seed != full.Seed ||
			meta.Patch != full.Patch || meta.GoldPatch != full.GoldPatch || meta.AssistantTurns() != full.AssistantTurns() || meta.Check() != full.Check() {
			t.Fatalf("TrajectoryMeta %+v, decoded %+v", meta, full)
		}
	})
}

// Map hands every non-blank line to fn with its line number, in order,
// whether the file is mapped, compressed or read from a stream, and stops
// at the first error.
func FuzzMapLines(f *testing.F) {
	for _, s := range []string{"", "a\n", "a\nb", "\n\n a \r\n\t\nb\r\n", "x\rmid\r\n", "ERR\nb", "a\n\nERR\nc\n", strings.Repeat("line\n", 100)} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	zw := gzip.NewWriter(nil) // reused: a new one allocates about a megabyte
	f.Fuzz(func(t *testing.T, data []byte) {
		// What Map must hand out: lines split at \n, a \r before it dropped.
		var want []string
		for i, l := range bytes.Split(data, []byte("\n")) {
			if i == bytes.Count(data, []byte("\n")) && len(l) == 0 {
				break // after the last newline
			}
			l = bytes.TrimSuffix(l, []byte("\r"))
			if len(bytes.TrimSpace(l)) > 0 {
				want = append(want, fmt.Sprintf("%d:%s", i+1, l))
			}
		}
		var stopAt = -1
		for i, w := range want {
			if strings.Contains(w, "ERR") {
				stopAt = i
				break
			}
		}
		plain := filepath.Join(dir, "in.jsonl")
		if err := os.WriteFile(plain, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var gz bytes.Buffer
		zw.Reset(&gz)
		zw.Write(data)
		zw.Close()
		packed := filepath.Join(dir, "in.jsonl.gz")
		if err := os.WriteFile(packed, gz.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		// A plain file that starts like a compressed one is read as one.
		looksPacked := bytes.HasPrefix(data, []byte{0x1f, 0x8b}) || bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd})
		for _, p := range []string{plain, packed, ""} {
			if p == plain && looksPacked {
				continue
			}
			var got []string
			var err error
			fn := func(n int, b []byte) (string, error) {
				if bytes.Contains(b, []byte("ERR")) {
					return "", fmt.Errorf("line %d", n)
				}
				return fmt.Sprintf("%d:%s", n, b), nil
			}
			sink := func(s string) error { got = append(got, s); return nil }
			if p == "" {
				p = "a stream"
				err = Map(bytes.NewReader(data), fn, sink)
			} else {
				r, oerr := Open(p)
				if oerr != nil {
					t.Fatalf("Open %s: %v", p, oerr)
				}
				err = Map(r, fn, sink)
				r.Close()
			}
			w := want
			if stopAt >= 0 {
				// The lines of batches before the failing one, at most.
				wantErr := "line " + strings.SplitN(want[stopAt], ":", 2)[0]
				if err == nil || err.Error() != wantErr {
					t.Fatalf("%s: error %v, want %q", p, err, wantErr)
				}
				w = want[:min(len(got), stopAt)]
			} else if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if strings.Join(got, "\n") != strings.Join(w, "\n") {
				t.Fatalf("%s: lines\n%q\nwant\n%q", p, got, w)
			}
		}
	})
}
