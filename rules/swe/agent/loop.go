package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/llm"
)

// Policy chooses the next assistant message: a model, or an offline
// stand-in that goes through the same loop and tools.
type Policy interface {
	Next(ctx context.Context, messages []llm.Message, tools []llm.Tool) (llm.Message, error)
}

// ModelPolicy asks a model endpoint.
type ModelPolicy struct {
	Client *llm.Client
	Seed   int64
}

func (p *ModelPolicy) Next(ctx context.Context, messages []llm.Message, tools []llm.Tool) (llm.Message, error) {
	r, err := p.Client.Chat(ctx, messages, tools, &p.Seed)
	if err != nil {
		return llm.Message{}, err
	}
	return r.Message, nil
}

// Task is what the agent is asked to do.
type Task struct {
	InstanceID       string
	ProblemStatement string
}

// Exit reasons of a rollout.
const (
	ExitFinish   = "finish"    // the agent called finish
	ExitMaxTurns = "max_turns" // it ran out of turns
)

// SystemPrompt is the agent's standing instruction.
const SystemPrompt = `You are a software engineer fixing an issue in a Python repository. You work through tools:
execute_bash runs shell commands, str_replace_editor views and edits files, think lets you reason,
finish ends the task. Explore the code, reproduce the issue, make the smallest change to non-test files
that fixes it, check it by running the tests, then call finish.`

// UserPrompt states the task.
func UserPrompt(t Task, workdir string) string {
	return fmt.Sprintf(`<uploaded_files>
%s
</uploaded_files>
The repository is in %s. Consider this issue:
<issue_description>
%s
</issue_description>
Change the non-test files of the repository so that the issue is resolved. The tests that check it are
already written; do not change test files.`, workdir, workdir, t.ProblemStatement)
}

// toolsJSON are the schemas the model is given, recorded in every
// trajectory: the SFT data built from it shows the model these, not
// another agent's.
var toolsJSON = func() json.RawMessage {
	b, err := json.Marshal(Tools)
	if err != nil {
		panic(err)
	}
	return b
}()

// Run is the agent loop: up to maxTurns assistant turns, each tool call run
// in the toolbox's session, until the agent calls finish. It returns the
// trajectory (messages with tool calls, tool results and their
// corrections) and why it stopped; on an error, the trajectory so far.
func Run(ctx context.Context, p Policy, tb *Toolbox, t Task, maxTurns int) (*format.Trajectory, string, error) {
	msgs := []llm.Message{
		{Role: "system", Content: SystemPrompt},
		{Role: "user", Content: UserPrompt(t, tb.S.Workdir())},
	}
	tr := &format.Trajectory{InstanceID: t.InstanceID, Tools: toolsJSON}
	for _, m := range msgs {
		tr.Messages = append(tr.Messages, format.Message{Role: m.Role, Content: m.Content})
	}
	for tr.Turns < maxTurns {
		m, err := p.Next(ctx, msgs, Tools)
		if err != nil {
			return tr, "", fmt.Errorf("turn %d: %w", tr.Turns+1, err)
		}
		tr.Turns++
		m.Role = "assistant"
		for i := range m.ToolCalls {
			if m.ToolCalls[i].ID == "" {
				// Results must name their call; some servers leave ids out.
				m.ToolCalls[i].ID = fmt.Sprintf("call_%d_%d", tr.Turns, i)
			}
			m.ToolCalls[i].Type = "function"
		}
		msgs = append(msgs, m)
		tr.Messages = append(tr.Messages, toFormat(m, nil))
		if len(m.ToolCalls) == 0 {
			nudge := llm.Message{Role: "user", Content: "Go on with the task using the tools; call finish when it is done."}
			msgs = append(msgs, nudge)
			tr.Messages = append(tr.Messages, toFormat(nudge, nil))
			continue
		}
		finished := false
		for _, c := range m.ToolCalls {
			res, err := tb.Call(ctx, c.Function.Name, c.Function.Arguments)
			if err != nil {
				return tr, "", fmt.Errorf("turn %d: %s: %w", tr.Turns, c.Function.Name, err)
			}
			out := llm.Message{Role: "tool", Content: res.Output, ToolCallID: c.ID, Name: c.Function.Name}
			msgs = append(msgs, out)
			tr.Messages = append(tr.Messages, toFormat(out, res.Corrections))
			finished = finished || res.Finish
		}
		if finished {
			return tr, ExitFinish, nil
		}
	}
	return tr, ExitMaxTurns, nil
}

func toFormat(m llm.Message, corrections []string) format.Message {
	out := format.Message{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID, Name: m.Name, Corrections: corrections}
	for _, c := range m.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, format.ToolCall{ID: c.ID, Type: c.Type,
			Function: format.FunctionCall{Name: c.Function.Name, Arguments: c.Function.Arguments}})
	}
	return out
}
