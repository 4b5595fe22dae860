// Package verify is the generative verifier's text, as the SWE-Lego
// release writes it: a system prompt asking for <judgement>YES</judgement>
// or <judgement>NO</judgement>, a user message holding the interaction log
// ([SYSTEM], [USER], [ASSISTANT] blocks, the final assistant message
// dropped), the final patch and the question; the label is the judgement.
// It also turns a served verifier's next-token log-probabilities after
// "<judgement>" into a score, judges trajectories with a verifier
// (NewJudge) and writes a verifier's training data (WriteData).
package verify

import (
	"fmt"
	"math"
	"strings"

	"github.com/legobuild/lego/rules/swe/format"
)

// SystemPrompt is the verifier's instruction.
const SystemPrompt = "You are an expert reviewer of software engineering work. You are given the log of an " +
	"interaction in which an AI assistant tried to resolve an issue in a code repository, and the final patch " +
	"it produced. Decide whether the patch resolves the issue. Answer with <judgement>YES</judgement> if it " +
	"does and <judgement>NO</judgement> if it does not."

// Marker opens the verifier's answer; the score is read at the token after it.
const Marker = "<judgement>"

// maxBlock bounds one message of the log: long tool outputs keep their
// head and tail, as a context window would.
const maxBlock = 4000

// Prompt is the user message for a trajectory.
func Prompt(t *format.Trajectory) string {
	msgs := t.Messages
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "assistant" {
			msgs = msgs[:i]
			break
		}
	}
	var b strings.Builder
	b.WriteString("Here is the interaction log:\n\n")
	for _, m := range msgs {
		tag := "[USER]"
		switch m.Role {
		case "system":
			tag = "[SYSTEM]"
		case "assistant":
			tag = "[ASSISTANT]"
		}
		text := m.Content
		for _, c := range m.ToolCalls {
			text += "\n<tool_call>\n" + format.CallJSON([]format.ToolCall{c}) + "\n</tool_call>"
		}
		fmt.Fprintf(&b, "%s\n%s\n\n", tag, clip(text))
	}
	patch := t.Patch
	if strings.TrimSpace(patch) == "" {
		patch = "(no changes)"
	}
	fmt.Fprintf(&b, "Here is the final patch:\n\n```diff\n%s\n```\n\nDid the assistant resolve the user's request?", strings.TrimRight(clip(patch), "\n"))
	return b.String()
}

func clip(s string) string {
	if len(s) <= maxBlock {
		return s
	}
	return s[:maxBlock/2] + "\n[... truncated ...]\n" + s[len(s)-maxBlock/2:]
}

// Label is the answer a verifier is trained to give.
func Label(resolved bool) string {
	if resolved {
		return Marker + "YES</judgement>"
	}
	return Marker + "NO</judgement>"
}

// Score reads a served verifier's log-probabilities of the token after the
// marker: l_yes is the largest over YES, Yes and yes (with or without a
// leading space), l_no likewise; score = exp(l_yes)/(exp(l_yes)+exp(l_no)).
// Log-probabilities differ from logits by one constant per position, so the
// score is the same.
func Score(top map[string]float64) (score, yes, no float64, err error) {
	yes, no = math.Inf(-1), math.Inf(-1)
	for tok, lp := range top {
		switch strings.TrimPrefix(tok, " ") {
		case "YES", "Yes", "yes":
			yes = math.Max(yes, lp)
		case "NO", "No", "no":
			no = math.Max(no, lp)
		}
	}
	switch {
	case math.IsInf(yes, -1) && math.IsInf(no, -1):
		return 0, 0, 0, fmt.Errorf("neither YES nor NO among the %d most likely next tokens", len(top))
	case math.IsInf(yes, -1):
		return 0, yes, no, nil
	case math.IsInf(no, -1):
		return 1, yes, no, nil
	}
	return 1 / (1 + math.Exp(no-yes)), yes, no, nil
}
