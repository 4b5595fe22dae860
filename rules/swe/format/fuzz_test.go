package format

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// The decoder never panics; it fails with a *LineError at the record's
// location, or decodes to a trajectory that AppendJSON writes as valid
// JSON, which decodes (as lego's shape) to the same trajectory again.
func FuzzDecodeTrajectory(f *testing.F) {
	for _, s := range trajectorySeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, shape := range append([]string{""}, Shapes...) {
			got, err := DecodeTrajectory(shape, Loc{File: "f.jsonl", N: 7}, b)
			if err != nil {
				var le *LineError
				if !errors.As(err, &le) || le.File != "f.jsonl" || le.Line != 7 || got != nil {
					t.Fatalf("%s: error %#v with %v", shape, err, got)
				}
				continue
			}
			out := got.AppendJSON(nil)
			if !json.Valid(out) {
				t.Fatalf("%s: AppendJSON wrote bad JSON %q", shape, out)
			}
			again, err := DecodeTrajectory(ShapeMessages, Loc{File: "g", N: 1}, out)
			if err != nil {
				t.Fatalf("%s: %v reading back %s", shape, err, out)
			}
			again.Shape = got.Shape
			if a, b := again.AppendJSON(nil), out; !bytes.Equal(a, b) {
				t.Fatalf("%s: read back as\n%s\nwritten\n%s", shape, a, b)
			}
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
				err = mapLines(bytes.NewReader(data), fn, sink)
			} else {
				r, oerr := Open(p)
				if oerr != nil {
					t.Fatalf("Open %s: %v", p, oerr)
				}
				err = mapLines(r, fn, sink)
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

// mapLines runs mapIter over the lines of r, as MapRecords does for a
// JSON Lines file.
func mapLines[T any](r io.Reader, fn func(line int, b []byte) (T, error), sink func(T) error) error {
	next, e, pos := lines(r)
	m, _ := r.(*mapped)
	return mapIter(numbered(next, e, pos), m, fn, sink)
}
