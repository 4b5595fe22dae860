package mask

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/format"
)

// checkLlamaFactory checks a dataset directory against what LLaMA-Factory's
// loader documents for "sharegpt" formatting (data/README.md of
// LLaMA-Factory): dataset_info.json names file_name, formatting, the
// columns (messages, system, tools) and tags (role_tag, content_tag,
// user_tag, assistant_tag, observation_tag, function_tag, system_tag);
// each example's messages alternate prompt side (user or observation tag)
// at even positions and response side (assistant or function tag) at odd
// ones, in pairs; system and tools are strings. The SWE-Lego trainer also
// reads a boolean turn_mask on every response-side message.
func checkLlamaFactory(t *testing.T, dir string) (examples, masked int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, InfoFile))
	if err != nil {
		t.Fatal(err)
	}
	var infos map[string]map[string]any
	if err := json.Unmarshal(b, &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 {
		t.Fatalf("dataset_info has %d entries", len(infos))
	}
	for _, info := range infos {
		if info["formatting"] != "sharegpt" {
			t.Fatalf("formatting %v", info["formatting"])
		}
		cols, _ := info["columns"].(map[string]any)
		tags, _ := info["tags"].(map[string]any)
		for _, k := range []string{"role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag"} {
			if s, _ := tags[k].(string); s == "" {
				t.Fatalf("tag %s missing in %v", k, tags)
			}
		}
		msgCol, _ := cols["messages"].(string)
		if msgCol == "" || cols["system"] != "system" || cols["tools"] != "tools" {
			t.Fatalf("columns %v", cols)
		}
		f, err := os.Open(filepath.Join(dir, info["file_name"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 64<<20)
		prompt := map[any]bool{tags["user_tag"]: true, tags["observation_tag"]: true}
		response := map[any]bool{tags["assistant_tag"]: true, tags["function_tag"]: true}
		for n := 1; sc.Scan(); n++ {
			var ex map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ex); err != nil {
				t.Fatalf("line %d: %v", n, err)
			}
			msgs, ok := ex[msgCol].([]any)
			if !ok {
				t.Fatalf("line %d: no %s list", n, msgCol)
			}
			if sys, ok := ex["system"]; ok {
				if _, ok := sys.(string); !ok {
					t.Fatalf("line %d: system is %T", n, sys)
				}
			} else if len(msgs) > 0 && msgs[0].(map[string]any)[tags["role_tag"].(string)] == tags["system_tag"] {
				msgs = msgs[1:] // the OpenAI variant: system as the first message
			}
			if _, ok := ex["tools"].(string); !ok {
				t.Fatalf("line %d: tools is %T", n, ex["tools"])
			}
			if len(msgs) == 0 || len(msgs)%2 != 0 {
				t.Fatalf("line %d: %d messages, want pairs", n, len(msgs))
			}
			responses, masks := 0, 0
			for i, m := range msgs {
				mm := m.(map[string]any)
				role := mm[tags["role_tag"].(string)]
				if _, ok := mm[tags["content_tag"].(string)].(string); !ok {
					t.Fatalf("line %d message %d: no content", n, i)
				}
				if i%2 == 0 && !prompt[role] || i%2 == 1 && !response[role] {
					t.Fatalf("line %d message %d: role %v out of turn", n, i, role)
				}
				tm, has := mm["turn_mask"]
				if i%2 == 1 {
					responses++
					if b, ok := tm.(bool); !ok {
						t.Fatalf("line %d message %d: turn_mask %v", n, i, tm)
					} else if b {
						masks++
					}
				} else if has {
					t.Fatalf("line %d message %d: turn_mask on a prompt", n, i)
				}
			}
			if responses != int(ex["turns"].(float64)) {
				t.Fatalf("line %d: %d turn masks for %v assistant turns", n, responses, ex["turns"])
			}
			examples++
			masked += masks
		}
	}
	return examples, masked
}

func TestRunWritesLlamaFactoryData(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "traj.jsonl")
	w, err := format.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := format.Generate(w, 50, 3); err != nil {
		t.Fatal(err)
	}
	w.Commit()
	m, _ := New(nil, nil)
	for _, f := range format.Formats {
		out := filepath.Join(dir, f)
		st, err := Run(in, out, "swe_"+f, f, "", m)
		if err != nil {
			t.Fatal(err)
		}
		n, masked := checkLlamaFactory(t, out)
		if n != 50 || masked != st.Masked || masked == 0 {
			t.Errorf("%s: %d examples, %d masked turns; stats say %d", f, n, masked, st.Masked)
		}
	}
}

func TestRunFailsWithoutPartialOutput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "traj.jsonl")
	good := `{"instance_id": "a", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}`
	os.WriteFile(in, []byte(good+"\n"+good+"\n"+`{"instance_id": "b", "turns": "ten"}`+"\n"), 0o644)
	m, _ := New(nil, nil)
	out := filepath.Join(dir, "out")
	_, err := Run(in, out, "x", format.ShareGPT, "", m)
	if err == nil || !strings.Contains(err.Error(), "traj.jsonl:3: field turns") {
		t.Fatalf("error %v", err)
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
	if _, err := Run(in, out, "x", "alpaca", "", m); err == nil || !strings.Contains(err.Error(), fmt.Sprint("supported: sharegpt, openai")) {
		t.Errorf("unknown format: %v", err)
	}
}
