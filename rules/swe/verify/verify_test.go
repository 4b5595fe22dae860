package verify

import (
	"math"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/format"
)

func TestPromptDropsTheFinalAssistantMessage(t *testing.T) {
	tr := &format.Trajectory{Patch: "diff --git a/x b/x\n", Messages: []format.Message{
		{Role: "system", Content: "agent rules"},
		{Role: "user", Content: "fix the bug"},
		{Role: "assistant", Content: "running tests", ToolCalls: []format.ToolCall{{ID: "1", Function: format.FunctionCall{Name: "execute_bash", Arguments: `{"command":"pytest"}`}}}},
		{Role: "tool", Content: "1 passed" + strings.Repeat("x", 2*maxBlock)},
		{Role: "assistant", Content: "all done, trust me"},
	}}
	p := Prompt(tr)
	for _, want := range []string{"[SYSTEM]\nagent rules", "[USER]\nfix the bug", "[ASSISTANT]\nrunning tests\n<tool_call>\n{\"name\":\"execute_bash\"", "[USER]\n1 passed", "[... truncated ...]", "```diff\ndiff --git a/x b/x\n```", "Did the assistant resolve"} {
		if !strings.Contains(p, want) {
			t.Errorf("prompt lacks %q", want)
		}
	}
	if strings.Contains(p, "trust me") {
		t.Error("the final assistant message is in the prompt")
	}
	if Label(true) != "<judgement>YES</judgement>" || Label(false) != "<judgement>NO</judgement>" {
		t.Error(Label(true), Label(false))
	}
}

func TestScore(t *testing.T) {
	s, yes, no, err := Score(map[string]float64{"YES": -0.5, " yes": -0.2, "NO": -1.7, "maybe": -0.1})
	if err != nil || yes != -0.2 || no != -1.7 || math.Abs(s-1/(1+math.Exp(-1.5))) > 1e-12 {
		t.Fatalf("%v %v %v %v", s, yes, no, err)
	}
	if s, _, _, err := Score(map[string]float64{"No": -0.1}); err != nil || s != 0 {
		t.Fatalf("only NO: %v %v", s, err)
	}
	if _, _, _, err := Score(map[string]float64{"maybe": -0.1}); err == nil {
		t.Fatal("no verdict among the tokens: no error")
	}
}
