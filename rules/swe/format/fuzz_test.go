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
	for _, s := range append(trajectorySeeds(), shapeSeeds()...) {
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

// shapeSeeds are small records of the other shapes (OpenHands events,
// SWE-agent history and trajectory, nebius) and SFT examples.
func shapeSeeds() []string {
	return []string{
		`{"instance_id": "o-1", "test_result": {"git_patch": "p", "report": {"resolved": true, "x": [1]}}, "history": [` +
			`{"id": 0, "source": "agent", "action": "system", "args": {"content": "sys", "tools": [{"type": "function", "function": {"name": "execute_bash"}}]}},` +
			`{"id": 1, "source": "user", "action": "message", "args": {"content": "fix it", "image_urls": null}},` +
			`{"id": 2, "source": "agent", "action": "run", "args": {"command": "ls", "thought": "look"}, "tool_call_metadata": {"function_name": "execute_bash", "tool_call_id": "t1", "model_response": {"id": "r", "choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "execute_bash", "arguments": "{\"command\": \"ls\"}"}}]}}]}}},` +
			`{"id": 3, "cause": 2, "source": "agent", "observation": "run", "content": "a b", "extras": {"metadata": {"exit_code": 0, "suffix": "", "pid": 5}, "command": "ls"}},` +
			`{"id": 4, "source": "agent", "action": "finish", "args": {"thought": ""}}, {"id": 5, "observation": "agent_state_changed"}]}`,
		`{"history": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "problem"}]}, ` +
			`{"role": "assistant", "content": "", "thought": "think", "action": "ls", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "bash", "arguments": {"cmd": "ls"}}}]}, ` +
			`{"role": "user", "content": "out", "tool_call_ids": ["a", "b"], "message_type": "observation"}], "info": {"submission": "diff", "exit_status": "submitted", "resolved": false, "model_stats": {"cost": 1.5}}, "environment": "e"}`,
		`{"trajectory": [{"response": "r", "thought": "t", "action": "ls", "observation": "o", "state": {}}, {"response": "", "thought": "t2", "observation": null}], "info": {"exit_status": "ok"}}`,
		`{"instance_id": "n", "model_name": "m", "target": true, "generated_patch": "g", "exit_status": "s", "trajectory": [` +
			`{"role": "system", "system_prompt": "sp", "text": "x"}, {"role": "user", "text": "u"}, {"role": "ai", "text": "a", "mask": true}, {"role": "user", "text": "obs", "mask": true, "cutoff_date": "2024"}]}`,
		`{"instance_id": "i", "infra_error": {"class": "c", "message": "m", "extra": [1, {"a": null}]}, "report": {"resolved": false}, "sample": 3, "exit": "e", "source_format": "x", ` +
			`"tools": "[{\"type\": \"function\"}]", "messages": [{"role": "function", "content": [{"type": "image_url", "image_url": {"url": "u"}}, "plain", {"text": "t"}], "corrections": ["c1", "c2"], "source_mask": true, "extra": {"k": [true, false, null, -1.5e3]}}]}`,
		`{"instance_id": "s", "turns": 2, "resolved": true, "tools": "[]", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a", "turn_mask": false}, {"from": "observation", "value": "o"}, {"from": "gpt", "value": "b", "extra": 1}], "system": "sys"}`,
		`{"instance_id": "s", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": "[]", "turns": 1}`,
	}
}
