package format

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
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
		err = mapLines(r, func(n int, b []byte) (string, error) {
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
		{`{"instance_id": "a", "messages": [{"role": 1}]}`, "in.jsonl:3: field messages[0].role: got JSON number, want string"},
		{`{"instance_id": "a",`, "in.jsonl:3: not JSON"},
		{"{\"instance_id\": \"a\xff\"}", "in.jsonl:3: field instance_id: invalid UTF-8 at byte 2"},
		{`{"instance_id": "a", "messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]}`, "in.jsonl:3: field messages[0].content.text: got JSON number"},
		{`{"FAIL_TO_PASS": 3}`, "in.jsonl:3: field FAIL_TO_PASS"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		input := "{\"instance_id\": \"ok\"}\n\n" + c.line + "\n"
		p := filepath.Join(dir, "in.jsonl")
		os.WriteFile(p, []byte(input), 0o644)
		var err error
		if strings.Contains(c.line, "FAIL") {
			err = mapLines(strings.NewReader(input), func(n int, b []byte) (int, error) {
				return n, DecodeLine(p, n, b, &Task{})
			}, func(int) error { return nil })
		} else {
			_, err = MapRecords(p, func(at Loc, b []byte) (int, error) {
				_, err := DecodeTrajectory("", at, b)
				return 0, err
			}, func(int) error { return nil })
		}
		c.want = filepath.Join(dir, c.want)
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
	err := mapLines(io.Reader(&in), func(line int, b []byte) (int, error) { return line, nil }, func(line int) error {
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

// What the decoder reads of lego's own trajectories is what encoding/json
// reads, and AppendJSON writes JSON that decodes to the same again.
func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := Generate(&buf, 30, 11); err != nil {
		t.Fatal(err)
	}
	extra := `{"instance_id": "q\"uote\\d", "resolved": null, "seed": -3, "messages": [{"role": "user", "content": "a\\\"]}"}, {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "think", "arguments": "{}"}}], "content": null}]}`
	lines := append(strings.Split(strings.TrimSpace(buf.String()), "\n"), extra)
	for n, line := range lines {
		var want Trajectory
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			t.Fatal(err)
		}
		want.Shape, want.Turns = ShapeMessages, want.AssistantTurns()
		got, err := DecodeTrajectory("", Loc{File: "f", N: n}, []byte(line))
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		for i := range got.Messages {
			got.Messages[i].Content, got.Messages[i].Raw = got.Messages[i].Raw.String(), nil
		}
		wb, _ := json.Marshal(&want)
		gb, _ := json.Marshal(got)
		if !bytes.Equal(wb, gb) {
			t.Errorf("line %d decodes differently:\n%s\n%s", n, gb, wb)
		}
		again, err := DecodeTrajectory(ShapeMessages, Loc{File: "g", N: 1}, got.AppendJSON(nil))
		if err != nil {
			t.Fatalf("line %d: AppendJSON wrote what does not decode: %v", n, err)
		}
		for i := range again.Messages {
			again.Messages[i].Content, again.Messages[i].Raw = again.Messages[i].Raw.String(), nil
		}
		if ab, _ := json.Marshal(again); !bytes.Equal(ab, gb) {
			t.Errorf("line %d: written and read again:\n%s\n%s", n, ab, gb)
		}
	}
}

// AppendJSON of an SFT example writes JSON holding what it was given.
func TestSFTAppendJSON(t *testing.T) {
	yes := true
	raw := []Text{Text(`<b>&amp;\u2028\b\f\t\u0001 \"q\" \\`), Escape("lone \ufffd é"), Text{}}
	want := []string{"<b>&amp;\u2028\b\f\t\u0001 \"q\" \\", "lone \ufffd é", ""}
	for n, f := range Formats {
		e := &SFT{InstanceID: "a/é", NumTurns: 7, Resolved: &yes, System: Escape("sys <&>"), Tools: ToolSchemas}
		var texts []string
		for i, r := range raw {
			mask := i%2 == 0
			e.Turns = append(e.Turns, Turn{Role: "user", Text: r}, Turn{Role: "assistant", Text: Escape("a\xfe"), Mask: &mask})
			texts = append(texts, want[i], "a\ufffd")
		}
		var got map[string]any
		if err := json.Unmarshal(e.AppendJSON(nil, f), &got); err != nil {
			t.Fatalf("%s: AppendJSON wrote bad JSON: %v", f, err)
		}
		tags := TagsOf(f)
		msgs, _ := got[tags.Messages].([]any)
		if f == OpenAI {
			msgs = msgs[1:] // the system message
		} else if got["system"] != "sys <&>" {
			t.Errorf("system %v", got["system"])
		}
		if len(msgs) != len(texts) || got["instance_id"] != "a/é" || got["turns"] != float64(7) || got["resolved"] != true || got["tools"] != ToolSchemas {
			t.Fatalf("%d %s: %d messages, %v", n, f, len(msgs), got)
		}
		for i, m := range msgs {
			mm := m.(map[string]any)
			if mm[tags.ContentTag] != texts[i] || (i%2 == 1) != (mm["turn_mask"] != nil) {
				t.Errorf("%s, message %d: %v", f, i, mm)
			}
		}
		h, err := DecodeSFTHeader(tags, Loc{File: "s"}, e.AppendJSON(nil, f))
		if err != nil || h.Turns != 3 || h.InstanceID != "a/é" || h.Resolved == nil || !*h.Resolved {
			t.Errorf("%s: header %+v, %v", f, h, err)
		}
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

// validString finds the end of exactly the strings skipString and
// validBody accept together, and says no to the rest.
func TestValidStringAgrees(t *testing.T) {
	alphabet := []string{"a", "é", "日", "\xff", "\xc3", "\"", "\\", "\\n", "\\u00e9", "\\u12", "\\x", "\t", "\x01", " ", "/", "\\/", "\u2028"}
	rng := rand.New(rand.NewSource(5))
	for n := range 20000 {
		var b strings.Builder
		b.WriteByte('"')
		for range rng.Intn(40) {
			b.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		if n%3 > 0 {
			b.WriteByte('"')
		}
		b.WriteString(alphabet[rng.Intn(len(alphabet))])
		s := []byte(b.String())
		end, ok := validString(s, 0)
		wend, err := skipString(s, 0)
		want := err == nil && validBody(s[1:wend-1])
		if ok != want || ok && end != wend {
			t.Fatalf("%q: validString %d %v, skipString %d %v, validBody %v", s, end, ok, wend, err, want)
		}
	}
}

// Task instances read the same from every layout they are published in.
func TestTaskInstancesInEveryLayout(t *testing.T) {
	src := filepath.Join("testdata", "instances", "instances.jsonl")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	recs := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	files := map[string][]byte{"i.jsonl": raw, "i.json": append(append([]byte("[\n"), bytes.Join(recs, []byte(",\n"))...), "\n]"...), "i.jsonl.gz": gz.Bytes()}
	for name, b := range files {
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	// A Parquet file has one type per column: one file per set's layout.
	for i, r := range recs {
		if err := WriteParquet(filepath.Join(dir, fmt.Sprintf("i%d.parquet", i)), [][]byte{r}, 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, names := range [][]string{{"i.jsonl"}, {"i.json"}, {"i.jsonl.gz"}, {"i0.parquet", "i1.parquet"}} {
		var tasks []Task
		var err error
		layout, name := "", names[0]
		for _, n := range names {
			layout, err = EachRecord(filepath.Join(dir, n), func(at Loc, b []byte) error {
				var task Task
				if err := DecodeAt(at, b, &task); err != nil {
					return err
				}
				tasks = append(tasks, task)
				return nil
			})
			if err != nil {
				break
			}
		}
		if err != nil || len(tasks) != 2 {
			t.Fatalf("%s (%s): %v, %d tasks", name, layout, err, len(tasks))
		}
		a, b := tasks[0], tasks[1]
		if a.InstanceID != "pallets__flask-4045" || strings.Join(a.FailToPass, ",") != "tests/test_blueprints.py::test_dotted" || len(a.PassToPass) != 2 ||
			b.InstanceID != "example-org__widgets-17" || strings.Join(b.FailToPass, ",") != "test_w.py::test_copy_keeps_colour" || len(b.PassToPass) != 0 ||
			!strings.Contains(string(b.InstallConfig), `"test_cmd":"pytest -rA"`) && !strings.Contains(string(b.InstallConfig), `"test_cmd": "pytest -rA"`) {
			t.Errorf("%s: %+v\n%+v", name, a, b)
		}
	}
	// A bad field names the record as its layout counts it.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`[{"instance_id": "a"}, {"instance_id": "b", "FAIL_TO_PASS": 3}]`), 0o644)
	_, err = EachRecord(bad, func(at Loc, b []byte) error { return DecodeAt(at, b, &Task{}) })
	if err == nil || !strings.HasPrefix(err.Error(), bad+": index 1: field FAIL_TO_PASS") {
		t.Errorf("bad record: %v", err)
	}
}

// Every value of a record is checked, those lego does not use included:
// a bad string anywhere fails the record, naming its field.
func TestEveryValueChecked(t *testing.T) {
	for _, c := range []struct{ rec, field string }{
		{"{\"instance_id\": \"a\", \"extra\": {\"deep\": [\"\xff\"]}, \"messages\": []}", "extra"},
		{"{\"instance_id\": \"a\", \"patch\": \"p\", \"info\": {\"submission\": \"\xff\"}, \"trajectory\": []}", "info.submission"},
		{"{\"instance_id\": \"a\", \"patch\": \"p\", \"test_result\": {\"git_patch\": \"\xff\"}, \"history\": [{\"action\": \"run\"}]}", "test_result.git_patch"},
	} {
		_, err := DecodeTrajectory("", Loc{File: "f", N: 1}, []byte(c.rec))
		var le *LineError
		if !errors.As(err, &le) || le.Field != c.field || !strings.Contains(le.Msg, "UTF-8") {
			t.Errorf("%q: %v, want an invalid UTF-8 error in %s", c.rec, err, c.field)
		}
	}
}
