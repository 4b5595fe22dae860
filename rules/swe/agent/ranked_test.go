package agent

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/llm"
)

// prefer ranks the candidate whose text contains want first.
func prefer(want string) Ranker {
	return func(_ []llm.Message, cands []llm.Message) ([]float64, error) {
		out := make([]float64, len(cands))
		for i, c := range cands {
			if strings.Contains(c.Content, want) {
				out[i] = 1
			}
		}
		return out, nil
	}
}

// The checkpoint's choices decide the rollout: a ranker that prefers the
// plan resolves the task through the real tools, one that prefers giving
// up finishes at once and leaves the bug, one that prefers a misstep
// makes it (and the plan goes on from where it was).
func TestRankedPolicyFollowsItsRanker(t *testing.T) {
	gold, err := os.ReadFile("../../../examples/swe-lego/repos/upstream/minicalc/fix.diff")
	if err != nil {
		t.Fatal(err)
	}
	run := func(r Ranker, temperature float64) (texts []string, tree map[string]string) {
		dir := copyRepo(t)
		sess, _ := NewDirSession(dir)
		p, err := NewRanked(ScriptedTask{Workdir: dir, GoldPatch: string(gold), TestCmd: "true"}, r, temperature, 1)
		if err != nil {
			t.Fatal(err)
		}
		tr, exit, err := Run(context.Background(), p, NewToolbox(sess), Task{InstanceID: "x", ProblemStatement: "unary minus"}, 40)
		for _, m := range tr.Messages {
			if m.Role == "assistant" {
				texts = append(texts, m.Content)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := ExitFinish; len(texts) == 40 {
			want = ExitMaxTurns
		} else if exit != want {
			t.Fatalf("exit %q after %q", exit, texts)
		}
		return texts, readTree(t, dir)
	}
	fixed, tree := run(prefer("Fixing"), 0)
	if fixed[len(fixed)-1] != "The fix is in." || !strings.Contains(tree["minicalc/parser.py"]+tree["minicalc/eval.py"], "-") {
		t.Fatalf("following the plan: %q", fixed)
	}
	gaveUp, tree := run(prefer("could not find"), 0)
	if len(gaveUp) != 1 || tree["minicalc/parser.py"] != readTree(t, copyRepo(t))["minicalc/parser.py"] {
		t.Fatalf("giving up: %q", gaveUp)
	}
	wander, _ := run(prefer("configuration"), 0)
	if len(wander) != 40 || wander[0] != "Let me look at the configuration." {
		t.Fatalf("a ranker that always wanders should reach max turns: %d turns, first %q", len(wander), wander[0])
	}
	a, _ := run(func(_ []llm.Message, c []llm.Message) ([]float64, error) { return make([]float64, len(c)), nil }, 1)
	b, _ := run(func(_ []llm.Message, c []llm.Message) ([]float64, error) { return make([]float64, len(c)), nil }, 1)
	if strings.Join(a, "|") != strings.Join(b, "|") {
		t.Fatal("sampling with one seed gave two rollouts")
	}
}
