package format

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"strings"
)

// Generate writes n synthetic trajectories in the shape of SWE-Lego's
// (10 to 100 turns, about 60 KB each, errors and test runs along the way,
// resolution falling with length) for tests and benchmarks. The same seed
// gives the same bytes.
func Generate(w io.Writer, n int, seed int64) error {
	rng := rand.New(rand.NewSource(seed))
	bw := bufio.NewWriterSize(w, 1<<20)
	words := strings.Fields("the function returns value when input list parser config module raises error test case " +
		"file path line index buffer token request response handler cache field model query result check update fix")
	text := func(n int) string {
		var b strings.Builder
		for b.Len() < n {
			b.WriteString(words[rng.Intn(len(words))])
			b.WriteByte(' ')
		}
		return b.String()
	}
	for i := range n {
		turns := 10 + rng.Intn(91)
		file := fmt.Sprintf("src/pkg%d/module%d.py", rng.Intn(50), rng.Intn(20))
		gold := fmt.Sprintf("--- a/%s\n+++ b/%s\n@@ -1 +1 @@\n-old\n+new\n", file, file)
		t := Trajectory{
			InstanceID: fmt.Sprintf("org%d__repo%d-%d", i%97, i%31, i), Turns: turns,
			Teacher: "Qwen3-Coder-480B-A35B-Instruct", Seed: int64(i), GoldPatch: gold, Tools: json.RawMessage(ToolSchemas),
			Messages: []Message{
				{Role: "system", Content: "You are a helpful software engineer. " + text(1500)},
				{Role: "user", Content: "Fix the issue: " + text(1200)},
			},
		}
		// Longer runs resolve less often (the paper's r = -0.95).
		t.Resolved = rng.Float64() < 1.1-float64(turns)/100
		switch {
		case t.Resolved:
			t.Patch = gold
		case rng.Intn(3) == 0:
			t.Patch = gold + "--- a/other.py\n+++ b/other.py\n"
		}
		for k := range turns {
			id := fmt.Sprintf("call_%d", k)
			var name, args, out string
			switch r := rng.Intn(10); {
			case k == turns-1:
				name, args, out = "finish", `{"message": "done"}`, "finished"
			case r < 4:
				name = "execute_bash"
				args = fmt.Sprintf(`{"command": "grep -rn %s src/"}`, words[rng.Intn(len(words))])
				out = text(400+rng.Intn(450)) + "\n[The command completed with exit code 0.]"
			case r < 5:
				name, args = "execute_bash", `{"command": "python -m pytest tests/ -x"}`
				out = text(400) + "\nFAILED tests/test_x.py::test_y - AssertionError\n[The command completed with exit code 1.]"
			case r < 6:
				name, args = "execute_bash", `{"command": "python run_thing.py"}`
				out = "Traceback (most recent call last):\n  File \"run_thing.py\", line 3\n" + text(300) + "\n[The command completed with exit code 1.]"
			case r < 9:
				name = "str_replace_editor"
				args = fmt.Sprintf(`{"command": "view", "path": "/testbed/%s", "view_range": [1, 60]}`, file)
				out = text(550 + rng.Intn(400))
			default:
				name, args, out = "think", `{"thought": "`+text(200)+`"}`, "Your thought has been logged."
			}
			t.Messages = append(t.Messages,
				Message{Role: "assistant", Content: text(150 + rng.Intn(150)),
					ToolCalls: []ToolCall{{ID: id, Type: "function", Function: FunctionCall{Name: name, Arguments: args}}}},
				Message{Role: "tool", ToolCallID: id, Name: name, Content: out})
		}
		b, err := json.Marshal(&t)
		if err != nil {
			return err
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
