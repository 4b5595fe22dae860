package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompressedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.jsonl", "a.jsonl.gz", "a.jsonl.zst"} {
		p := filepath.Join(dir, name)
		w, err := Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := Generate(w, 20, 7); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists before Commit", name)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		r, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		err = Map(r, func(n int, b []byte) (string, error) {
			var tr Trajectory
			if err := DecodeLine(p, n, b, &tr); err != nil {
				return "", err
			}
			if tr.AssistantTurns() != tr.Turns || tr.Turns < 10 || tr.Turns > 100 || tr.Check() != "" {
				return "", fmt.Errorf("line %d: %d turns, %q", n, tr.AssistantTurns(), tr.Check())
			}
			return tr.InstanceID, nil
		}, func(id string) error { ids = append(ids, id); return nil })
		r.Close()
		if err != nil || len(ids) != 20 || ids[0] != "org0__repo0-0" || ids[19] != "org19__repo19-19" {
			t.Errorf("%s: %v, %d ids in order %v", name, err, len(ids), ids)
		}
	}
}

func TestBadLinesNameFileLineAndField(t *testing.T) {
	cases := []struct{ line, want string }{
		{`{"instance_id": "a", "resolved": "yes"}`, "in.jsonl:3: field resolved: got JSON string, want bool"},
		{`{"instance_id": "a", "messages": [{"role": 1}]}`, "in.jsonl:3: field messages.role: got JSON number, want string"},
		{`{"instance_id": "a",`, "in.jsonl:3: not JSON"},
		{`{"FAIL_TO_PASS": 3}`, "in.jsonl:3: field FAIL_TO_PASS"},
	}
	for _, c := range cases {
		input := "{\"instance_id\": \"ok\"}\n\n" + c.line + "\n"
		var v any = &Trajectory{}
		if strings.Contains(c.line, "FAIL") {
			v = &Task{}
		}
		err := Map(strings.NewReader(input), func(n int, b []byte) (int, error) {
			return n, DecodeLine("in.jsonl", n, b, v)
		}, func(int) error { return nil })
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: error %v, want prefix %q", c.line, err, c.want)
		}
	}
}

func TestStringListAcceptsBothForms(t *testing.T) {
	for _, in := range []string{`{"FAIL_TO_PASS": ["a", "b"]}`, `{"FAIL_TO_PASS": "[\"a\", \"b\"]"}`} {
		var task Task
		if err := DecodeLine("t", 1, []byte(in), &task); err != nil || strings.Join(task.FailToPass, ",") != "a,b" {
			t.Errorf("%s: %v %v", in, task.FailToPass, err)
		}
	}
}

func TestMapKeepsOrderAcrossBatches(t *testing.T) {
	var in bytes.Buffer
	const n = 20000
	for i := range n {
		fmt.Fprintf(&in, "{\"i\": %d, \"pad\": %q}\n", i, strings.Repeat("x", 500))
	}
	next := 1
	err := Map(io.Reader(&in), func(line int, b []byte) (int, error) { return line, nil }, func(line int) error {
		if line != next {
			return fmt.Errorf("got line %d, want %d", line, next)
		}
		next++
		return nil
	})
	if err != nil || next != n+1 {
		t.Errorf("%v, stopped at %d", err, next)
	}
}

func TestPatchFiles(t *testing.T) {
	diff := "--- a/x.py\n+++ b/x.py\n@@\n--- /dev/null\n+++ b/new.py\n"
	if got := strings.Join(PatchFiles(diff), ","); got != "new.py,x.py" {
		t.Errorf("PatchFiles = %s", got)
	}
	if err := CheckFormat("alpaca"); err == nil || !strings.Contains(err.Error(), "sharegpt, openai") {
		t.Errorf("CheckFormat: %v", err)
	}
}

// The fast scanner agrees with encoding/json on what it reads, and
// rejects what is not JSON.
func TestScannerAgreesWithDecoder(t *testing.T) {
	var buf bytes.Buffer
	if err := Generate(&buf, 30, 11); err != nil {
		t.Fatal(err)
	}
	extra := `{"instance_id": "q\"uote\\d", "resolved": null, "seed": -3, "messages": [{"role": "user", "content": "a\\\"]}"}, {"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": "think", "arguments": "{}"}}], "content": null}]}`
	lines := append(strings.Split(strings.TrimSpace(buf.String()), "\n"), extra)
	for n, line := range lines {
		var want Trajectory
		if err := DecodeLine("f", n, []byte(line), &want); err != nil {
			t.Fatal(err)
		}
		got, err := TrajectoryMeta("f", n, []byte(line))
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if got.InstanceID != want.InstanceID || got.Resolved != want.Resolved || got.Seed != want.Seed || got.Turns != want.Turns ||
			got.Patch != want.Patch || got.GoldPatch != want.GoldPatch || got.AssistantTurns() != want.AssistantTurns() || got.Check() != want.Check() {
			t.Errorf("line %d: scanner %+v", n, got)
		}
	}
	for _, bad := range []string{`{"instance_id": "a", "messages": [tru]}`, `{"instance_id": "a"`, `{"instance_id": "a", "content": "unterminated}`, `[1]`} {
		if _, err := TrajectoryMeta("f.jsonl", 4, []byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "f.jsonl:4: not JSON") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, err := TrajectoryMeta("f.jsonl", 2, []byte(`{"resolved": "yes"}`)); err == nil || err.Error() != "f.jsonl:2: field resolved: got JSON string, want bool" {
		t.Errorf("type error: %v", err)
	}
	h, err := SFTHeaderOf("s", 1, []byte(`{"conversations": [{"value": "x\"}"}], "instance_id": "i", "resolved": false, "turns": 42}`))
	if err != nil || h.Turns != 42 || h.InstanceID != "i" || h.Resolved == nil || *h.Resolved {
		t.Errorf("header %+v, %v", h, err)
	}
}

// The fast decoders give what encoding/json gives, and AppendJSON writes
// JSON that decodes to what it was given.
func TestFastPathsMatchEncodingJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := Generate(&buf, 40, 13); err != nil {
		t.Fatal(err)
	}
	tricky := []string{
		`{"instance_id": "a\u00e9\ud83d\ude00\/", "resolved": true, "messages": [{"role": "user", "content": "<b>&amp;\u2028\b\f\t\u0001 \"q\" \\"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "execute_bash", "arguments": "{\"command\": \"echo \\u00e9 < x\"}"}}]}, {"role": "tool", "tool_call_id": "c", "content": "lone \ud800 surrogate"}]}`,
		"{\"instance_id\": \"raw \xff byte\", \"messages\": []}",
		`{"instance_id": "extra", "unknown_field": 1, "messages": []}`,
	}
	lines := append(strings.Split(strings.TrimSpace(buf.String()), "\n"), tricky...)
	yes := true
	for n, line := range lines {
		var want Trajectory
		if err := DecodeLine("f", n, []byte(line), &want); err != nil {
			t.Fatal(err)
		}
		got, err := DecodeTrajectory("f", n, []byte(line))
		if err != nil {
			t.Fatal(err)
		}
		wb, _ := json.Marshal(&want)
		gb, _ := json.Marshal(got)
		if !bytes.Equal(wb, gb) {
			t.Errorf("line %d decodes differently:\n%s\n%s", n, gb, wb)
		}
		// What DecodeForSFT keeps as raw text decodes to the same content.
		lazy, err := DecodeForSFT("f", n, []byte(line))
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range lazy.Messages {
			w := want.Messages[i]
			if m.Raw != nil && m.Raw.String() != w.Content || m.Raw == nil && m.Content != w.Content {
				t.Errorf("line %d message %d: raw %q, content %q, want %q", n, i, m.Raw, m.Content, w.Content)
			}
		}
		for _, f := range Formats {
			e := &SFT{InstanceID: want.InstanceID, NumTurns: n, Resolved: &yes, System: Escape("sys <&>"), Tools: ToolSchemas}
			mask := n%2 == 0
			var texts []string
			for i, m := range want.Messages {
				// Raw texts as the decoder keeps them, and escaped ones.
				e.Turns = append(e.Turns, Turn{Role: "user", Text: lazy.Messages[i].Raw}, Turn{Role: "assistant", Text: Escape(m.Role + "\xfe"), Mask: &mask})
				if lazy.Messages[i].Raw == nil {
					e.Turns[len(e.Turns)-2].Text = Escape(m.Content)
				}
				texts = append(texts, m.Content, strings.ToValidUTF8(m.Role+"\xfe", "\ufffd"))
			}
			var got map[string]any
			if err := json.Unmarshal(e.AppendJSON(nil, f), &got); err != nil {
				t.Fatalf("line %d, %s: AppendJSON wrote bad JSON: %v", n, f, err)
			}
			tags := TagsOf(f)
			msgs, _ := got[tags.Messages].([]any)
			if f == OpenAI {
				msgs = msgs[1:] // the system message
			} else if got["system"] != "sys <&>" {
				t.Errorf("system %v", got["system"])
			}
			if len(msgs) != len(texts) || got["instance_id"] != want.InstanceID || got["turns"] != float64(n) || got["resolved"] != true {
				t.Fatalf("line %d, %s: %d messages, %v", n, f, len(msgs), got["instance_id"])
			}
			for i, m := range msgs {
				mm := m.(map[string]any)
				if mm[tags.ContentTag] != texts[i] || (i%2 == 1) != (mm["turn_mask"] != nil) {
					t.Errorf("line %d, %s, message %d: %v", n, f, i, mm)
				}
			}
		}
	}
	if _, err := DecodeTrajectory("f.jsonl", 9, []byte(`{"instance_id": 5}`)); err == nil || !strings.HasPrefix(err.Error(), "f.jsonl:9: field instance_id") {
		t.Errorf("bad line: %v", err)
	}
}

func TestValidBody(t *testing.T) {
	for body, want := range map[string]bool{
		`plain text`: true,
		`été ✓ 日本語 and more than 8 bytes`:    true,
		`esc \" \\ \/ \b \f \n \r \t \u00e9`: true,
		"tab\tinside":                        false,
		"long text with a bell \x07 late":    false,
		`bad \x escape`:                      false,
		`short \u12`:                         false,
		`ends in \`:                          false,
		"bad utf8 \xff here":                 false,
	} {
		if got := validBody([]byte(body)); got != want {
			t.Errorf("validBody(%q) = %v, want %v", body, got, want)
		}
	}
}

// DecodeTrajectory decodes a trajectory line as the scanner does, fast
// when it can, else with DecodeLine: what the tests compare.
func DecodeTrajectory(file string, line int, b []byte) (*Trajectory, error) {
	return decode(file, line, b, false)
}
