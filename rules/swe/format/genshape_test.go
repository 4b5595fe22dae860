package format

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func genShape(t *testing.T, shape string, n int, seed int64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := GenerateShape(&b, shape, n, seed); err != nil {
		t.Fatalf("GenerateShape(%q): %v", shape, err)
	}
	return b.Bytes()
}

func TestGenerateShapeDeterministic(t *testing.T) {
	for _, shape := range GenShapes {
		a, b := genShape(t, shape, 4, 7), genShape(t, shape, 4, 7)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the same seed gave different bytes", shape)
		}
		if bytes.Equal(a, genShape(t, shape, 4, 8)) {
			t.Errorf("%s: seeds 7 and 8 gave the same bytes", shape)
		}
	}
}

func TestGenerateShapeUnknown(t *testing.T) {
	err := GenerateShape(&bytes.Buffer{}, "sharegpt", 1, 1)
	if err == nil || !strings.Contains(err.Error(), "sharegpt") || !strings.Contains(err.Error(), "openhands, sweagent, chatml") {
		t.Fatalf("unknown shape: got %v, want an error naming it and listing the shapes", err)
	}
}

// textOf reads a content that may be a string or a list of text parts.
func textOf(t *testing.T, c any) (string, bool) {
	switch v := c.(type) {
	case string:
		return v, false
	case []any:
		var s []string
		for _, p := range v {
			part := p.(map[string]any)
			if part["type"] != "text" {
				t.Fatalf("part of type %v", part["type"])
			}
			s = append(s, part["text"].(string))
		}
		return strings.Join(s, "\n"), true
	}
	t.Fatalf("content %T", c)
	return "", false
}

// shapeStats is what a record of any shape is checked for.
type shapeStats struct {
	turns, nulls, parts, msgs int
	maxObs                    int
	obs                       string // all observations, joined
}

func TestGenerateShapeProperties(t *testing.T) {
	// The texts a run must meet along the way, per shape (over the whole
	// sample, not every record).
	want := map[string][]string{
		"openhands": {"Invalid `view_range` parameter", "did not appear verbatim", "command not found", "Traceback (most recent call last)",
			"[The command completed with exit code 1.]", "FAILED tests/", "timed out after 120 seconds"},
		"sweagent": {"Your proposed edit has introduced new syntax error(s)", "Your output was not formatted correctly", "command not found",
			"Traceback (most recent call last)", "FAILED tests/"},
		"chatml": {"Your proposed edit has introduced new syntax error(s)", "Your output was not formatted correctly", "command not found",
			"Traceback (most recent call last)", "FAILED tests/"},
	}
	for _, shape := range GenShapes[1:] {
		t.Run(shape, func(t *testing.T) {
			data := genShape(t, shape, 30, 3)
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(nil, 64<<20)
			var all strings.Builder
			n, size, resolvedShort, resolvedLong, short, long := 0, 0, 0, 0, 0, 0
			var total shapeStats
			for sc.Scan() {
				n++
				line := sc.Bytes()
				size += len(line)
				var rec map[string]any
				if err := json.Unmarshal(line, &rec); err != nil {
					t.Fatalf("record %d: %v", n, err)
				}
				var st shapeStats
				var resolved bool
				switch shape {
				case "openhands":
					st, resolved = checkOpenHands(t, n, rec, line)
				case "sweagent":
					st, resolved = checkSWEAgent(t, n, rec)
				case "chatml":
					st, resolved = checkChatML(t, n, rec)
				}
				if st.turns < 10 || st.turns > 100 {
					t.Errorf("record %d: %d assistant turns, want 10..100", n, st.turns)
				}
				if st.maxObs < 1<<10 || st.maxObs > 21<<10 {
					t.Errorf("record %d: longest observation %d bytes, want 1 to 20 KB", n, st.maxObs)
				}
				all.WriteString(st.obs)
				total.nulls += st.nulls
				total.parts += st.parts
				total.msgs += st.msgs
				if st.turns < 40 {
					short++
					resolvedShort += b2i(resolved)
				} else if st.turns > 70 {
					long++
					resolvedLong += b2i(resolved)
				}
			}
			if n != 30 {
				t.Fatalf("%d records, want 30", n)
			}
			if size/n < 60<<10 {
				t.Errorf("records of %d bytes on average, want 60 KB or more", size/n)
			}
			for _, s := range want[shape] {
				if !strings.Contains(all.String(), s) {
					t.Errorf("no observation holds %q", s)
				}
			}
			if short > 0 && long > 0 && float64(resolvedLong)/float64(long) >= float64(resolvedShort)/float64(short) {
				t.Errorf("long runs resolve as often as short ones (%d/%d vs %d/%d)", resolvedLong, long, resolvedShort, short)
			}
			if shape == "openhands" {
				// About half the messages carry multi-part content.
				if f := float64(total.parts) / float64(total.msgs); f < 0.4 || f > 0.6 {
					t.Errorf("%.2f of messages have multi-part content, want about half", f)
				}
			}
		})
	}
}

func checkOpenHands(t *testing.T, n int, rec map[string]any, line []byte) (st shapeStats, resolved bool) {
	t.Helper()
	resolved = rec["resolved"].(bool)
	tools, err := json.Marshal(rec["tools"])
	if err != nil || len(tools) < 3<<10 {
		t.Errorf("record %d: tools list of %d bytes, want 3 KB or more", n, len(tools))
	}
	names := map[string]bool{}
	for _, tl := range rec["tools"].([]any) {
		names[tl.(map[string]any)["function"].(map[string]any)["name"].(string)] = true
	}
	for _, m := range rec["messages"].([]any) {
		msg := m.(map[string]any)
		st.msgs++
		for _, k := range []string{"role", "content", "tool_calls", "tool_call_id", "name"} {
			v, ok := msg[k]
			if !ok {
				t.Fatalf("record %d: a message lacks %q: %v", n, k, msg)
			}
			if v == nil {
				st.nulls++
			}
		}
		text, multi := textOf(t, msg["content"])
		st.parts += b2i(multi)
		switch msg["role"] {
		case "assistant":
			st.turns++
			calls := msg["tool_calls"].([]any)
			f := calls[0].(map[string]any)["function"].(map[string]any)
			var args map[string]any
			if err := json.Unmarshal([]byte(f["arguments"].(string)), &args); err != nil {
				t.Fatalf("record %d: arguments are not a JSON string holding an object: %v", n, err)
			}
			if !names[f["name"].(string)] {
				t.Errorf("record %d: call to %v, not among the tools", n, f["name"])
			}
		case "tool":
			st.obs += text + "\n"
			st.maxObs = max(st.maxObs, len(text))
			if msg["tool_call_id"] == nil || msg["name"] == nil {
				t.Errorf("record %d: tool result without tool_call_id or name", n)
			}
		}
	}
	if !bytes.Contains(line, []byte(`"tool_calls":null`)) || !bytes.Contains(line, []byte(`"tool_call_id":null`)) {
		t.Errorf("record %d: no explicit nulls", n)
	}
	return st, resolved
}

func checkSWEAgent(t *testing.T, n int, rec map[string]any) (st shapeStats, resolved bool) {
	t.Helper()
	info := rec["info"].(map[string]any)
	if info["exit_status"] != "submitted" || !strings.HasPrefix(info["submission"].(string), "diff --git") {
		t.Errorf("record %d: info %v lacks a submission", n, info)
	}
	traj := rec["trajectory"].([]any)
	seen := false
	for _, m := range rec["history"].([]any) {
		msg := m.(map[string]any)
		switch msg["role"] {
		case "assistant":
			seen = true
			st.turns++
			if msg["message_type"] != "action" {
				t.Errorf("record %d: assistant message of type %v", n, msg["message_type"])
			}
		case "user":
			if seen {
				c := msg["content"].(string)
				st.obs += c + "\n"
				st.maxObs = max(st.maxObs, len(c))
			}
		}
	}
	if len(traj) != st.turns {
		t.Errorf("record %d: %d trajectory steps for %d assistant turns", n, len(traj), st.turns)
	}
	return st, info["resolved"].(bool)
}

func checkChatML(t *testing.T, n int, rec map[string]any) (st shapeStats, resolved bool) {
	t.Helper()
	seen := false
	for _, m := range rec["messages"].([]any) {
		msg := m.(map[string]any)
		if _, ok := msg["tool_calls"]; ok {
			t.Fatalf("record %d: chatml message with tool_calls", n)
		}
		c := msg["content"].(string)
		switch msg["role"] {
		case "assistant":
			seen = true
			st.turns++
		case "user":
			if seen {
				if !strings.HasPrefix(c, "OBSERVATION:\n") {
					t.Errorf("record %d: observation %.40q does not start with OBSERVATION:", n, c)
				}
				st.obs += c + "\n"
				st.maxObs = max(st.maxObs, len(c))
			}
		}
	}
	for _, k := range []string{"instance_id", "model", "traj_id", "patch"} {
		if s, _ := rec[k].(string); s == "" {
			t.Errorf("record %d: no %s", n, k)
		}
	}
	return st, rec["resolved"].(bool)
}

// TestShapeFixtures keeps the hand-written fixtures and want.json in step:
// every record named in want.json exists, with as many assistant turns as
// want.json has decisions.
func TestShapeFixtures(t *testing.T) {
	dir := filepath.Join("testdata", "shapes")
	var want map[string]map[string][]struct {
		Turn   int    `json:"turn"`
		Masked bool   `json:"masked"`
		Reason string `json:"reason"`
		Exempt string `json:"exempt"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("want.json: %v", err)
	}
	for file, recs := range want {
		got := fixtureTurns(t, filepath.Join(dir, file))
		if len(got) != len(recs) {
			t.Errorf("%s: %d records, want.json has %d", file, len(got), len(recs))
		}
		for id, turns := range recs {
			if got[id] != len(turns) {
				t.Errorf("%s: %s has %d assistant turns, want.json %d", file, id, got[id], len(turns))
			}
			for i, d := range turns {
				if d.Turn != i+1 || d.Masked != (d.Reason != "") || (d.Exempt != "" && d.Masked) {
					t.Errorf("%s: %s: decision %d is %+v", file, id, i+1, d)
				}
			}
		}
	}
}

// fixtureTurns counts the assistant turns of each record of a fixture, by
// its shape's rule (shapes.md).
func fixtureTurns(t *testing.T, path string) map[string]int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	if strings.HasSuffix(path, ".traj") {
		var r map[string]any
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r["instance_id"] = strings.TrimSuffix(filepath.Base(path), ".traj")
		recs = append(recs, r)
	} else {
		for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var r map[string]any
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatalf("%s:%d: %v", path, i+1, err)
			}
			recs = append(recs, r)
		}
	}
	out := map[string]int{}
	for _, r := range recs {
		id := r["instance_id"].(string)
		count := func(list any, role, value string) {
			for _, m := range list.([]any) {
				if m.(map[string]any)[role] == value {
					out[id]++
				}
			}
		}
		switch {
		case r["history"] != nil && r["instruction"] != nil: // openhands_events: the agent's actions
			for _, e := range r["history"].([]any) {
				ev := e.(map[string]any)
				if ev["source"] == "agent" && ev["action"] != nil && ev["action"] != "system" {
					out[id]++
				}
			}
		case r["history"] != nil:
			count(r["history"], "role", "assistant")
		case r["target"] != nil:
			count(r["trajectory"], "role", "ai")
		case r["trajectory"] != nil:
			out[id] += len(r["trajectory"].([]any))
		default:
			count(r["messages"], "role", "assistant")
		}
	}
	return out
}
