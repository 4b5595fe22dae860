// Package format is the one place where the data of the SWE-Lego pipeline
// is defined, read and written. Records are read from JSON Lines, JSON
// arrays, JSON documents one after the other (SWE-agent's .traj) or
// Parquet, plain or gzip- or zstd-compressed, the layout found from the
// content (records.go); lego writes JSON Lines, compressed by suffix,
// streamed record by record.
//
// Task instances (SWE-bench / SWE-rebench schema), one per record:
//
//	{"instance_id", "repo", "base_commit", "patch", "test_patch",
//	 "problem_statement", "hints_text", "created_at", "version",
//	 "FAIL_TO_PASS", "PASS_TO_PASS", "environment_setup_commit",
//	 "install_config", "image"}
//
// FAIL_TO_PASS and PASS_TO_PASS are lists of test names, or those lists
// JSON-encoded in a string: both are accepted. lego adds "env", "source"
// and, for synthetic tasks, "bug_patch", "strategy" and "modifier" (see
// Task).
//
// Trajectories come in the shapes published agents write (shapes.go:
// OpenAI messages, OpenHands' event stream, SWE-agent's .traj, ChatML,
// nebius'), decoded by one decoder (decode.go) into lego's own shape,
// which the filter writes and everything after it reads, one per line:
//
//	{"instance_id": "repo__name-123", "resolved": true, "semi_resolved": false,
//	 "turns": 12, "teacher": "...", "seed": 0, "patch": "<final diff>",
//	 "gold_patch": "<reference diff, optional>", "source_format": "messages",
//	 "tools": [<the OpenAI function schemas the run was given>],
//	 "messages": [
//	   {"role": "system", "content": "..."},
//	   {"role": "user", "content": "<problem statement>"},
//	   {"role": "assistant", "content": "<thought>", "tool_calls": [
//	     {"id": "c1", "type": "function",
//	      "function": {"name": "execute_bash", "arguments": "{\"command\": \"ls\"}"}}]},
//	   {"role": "tool", "tool_call_id": "c1", "name": "execute_bash", "content": "<output>"},
//	   ...]}
//
// A turn is a run of assistant messages (an SFT example joins them);
// "turns" is always counted, never read. SFT datasets are LLaMA-Factory's
// sharegpt format or its OpenAI-messages variant (see sft.go), each
// assistant-side message carrying the boolean turn_mask the SWE-Lego
// trainer reads (true = no loss), and described by a dataset_info.json.
package format

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// StringList is a list of strings that may arrive JSON-encoded in a string.
type StringList []string

func (l *StringList) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*l = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		// A type error, so that json names the field.
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeOf([]string(nil))}
	}
	if strings.TrimSpace(s) == "" {
		*l = nil
		return nil
	}
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return fmt.Errorf("string does not hold a JSON list: %v", err)
	}
	*l = list
	return nil
}

func jsonKind(b []byte) string {
	switch c := strings.TrimSpace(string(b)); {
	case c == "":
		return "nothing"
	case c[0] == '{':
		return "object"
	case c[0] == 't' || c[0] == 'f':
		return "bool"
	case c[0] == 'n':
		return "null"
	}
	return "number"
}

// Task is a task instance.
type Task struct {
	InstanceID             string          `json:"instance_id"`
	Repo                   string          `json:"repo"`
	BaseCommit             string          `json:"base_commit"`
	Patch                  string          `json:"patch"`
	TestPatch              string          `json:"test_patch"`
	ProblemStatement       string          `json:"problem_statement"`
	HintsText              string          `json:"hints_text,omitempty"`
	CreatedAt              string          `json:"created_at,omitempty"`
	Version                string          `json:"version,omitempty"`
	FailToPass             StringList      `json:"FAIL_TO_PASS"`
	PassToPass             StringList      `json:"PASS_TO_PASS"`
	EnvironmentSetupCommit string          `json:"environment_setup_commit,omitempty"`
	InstallConfig          json.RawMessage `json:"install_config,omitempty"`
	Image                  string          `json:"image,omitempty"`

	// lego's additions. Env is the swe_env target the task runs in (Image
	// is its manifest digest). A synthetic task's starting state is its
	// env with BugPatch applied; Patch, as for real tasks, is the fix.
	Env      string `json:"env,omitempty"`
	Source   string `json:"source,omitempty"` // real or synthetic
	BugPatch string `json:"bug_patch,omitempty"`
	Strategy string `json:"strategy,omitempty"` // synthetic: ast or llm_rewrite
	Modifier string `json:"modifier,omitempty"` // ast: the modifier that made the bug
}

// Trajectory is one agent run on one task.
type Trajectory struct {
	InstanceID   string    `json:"instance_id"`
	Resolved     bool      `json:"resolved"`
	SemiResolved bool      `json:"semi_resolved,omitempty"`
	Turns        int       `json:"turns"`
	Teacher      string    `json:"teacher,omitempty"`
	Seed         int64     `json:"seed,omitempty"`
	Patch        string    `json:"patch,omitempty"`
	GoldPatch    string    `json:"gold_patch,omitempty"`
	Exit         string    `json:"exit,omitempty"`   // why the rollout stopped: finish or max_turns
	Sample       int       `json:"sample,omitempty"` // which of a task's rollouts
	Messages     []Message `json:"messages"`
	// Tools are the schemas of the tools the run was given (a JSON list),
	// when the record carries them.
	Tools json.RawMessage `json:"tools,omitempty"`
	// Shape is the shape the record was read as (ShapeMessages, ...).
	Shape string `json:"source_format,omitempty"`
	// InfraError, when set, says the infrastructure cut the rollout
	// short (the endpoint did not answer, the container broke, the tests
	// could not start): the trajectory is no result, and nothing may
	// count it or learn from it.
	InfraError *InfraError `json:"infra_error,omitempty"`
}

// InfraError is the failure that cut a trajectory short: its class
// (executors.Classes: endpoint, runtime, harness, ...) and message.
type InfraError struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// Message is one chat message.
type Message struct {
	Role       string     `json:"role"` // system, user, assistant or tool
	Content    string     `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Name       string     `json:"name,omitempty"`
	// Corrections, on a tool result, say what the agent loop fixed in a
	// malformed call before running it (e.g. a numeric string taken as
	// an integer).
	Corrections []string `json:"corrections,omitempty"`
	// Action, on an assistant message without tool calls, is the command
	// it ran as its scaffold parsed it (SWE-agent's "action").
	Action string `json:"action,omitempty"`
	// SourceMask says the source set marked this assistant message as
	// not to be trained on (nebius' per-message "mask").
	SourceMask bool `json:"source_mask,omitempty"`
	// Raw is the content as it stood in the input (JSON text), when
	// DecodeTrajectory read it; Content is then set only when asked for.
	Raw Text `json:"-"`
}

// ToolCall is a call an assistant message makes.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names the tool and holds its arguments as a JSON string.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Check reports what makes a trajectory unusable for training, or "".
func (t *Trajectory) Check() string {
	if t.InstanceID == "" {
		return "no instance_id"
	}
	if len(t.Messages) == 0 {
		return "no messages"
	}
	calls := map[string]bool{}
	sawAssistant, sawPrompt := false, false
	for i, m := range t.Messages {
		switch m.Role {
		case "system":
			if i != 0 {
				return fmt.Sprintf("message %d: system message after the start", i)
			}
		case "user":
			sawPrompt = true
		case "assistant":
			if !sawPrompt {
				return fmt.Sprintf("message %d: an assistant turn before any prompt (the record holds no problem statement)", i)
			}
			sawAssistant = true
			for _, c := range m.ToolCalls {
				calls[c.ID] = true
			}
		case "tool":
			if m.ToolCallID != "" && !calls[m.ToolCallID] {
				return fmt.Sprintf("message %d: result for unknown tool call %q", i, m.ToolCallID)
			}
		default:
			return fmt.Sprintf("message %d: unknown role %q", i, m.Role)
		}
	}
	if !sawAssistant {
		return "no assistant turn"
	}
	return ""
}

// PatchFiles lists the files a unified diff changes (its "+++ b/…" and
// "--- a/…" paths), sorted and unique.
func PatchFiles(diff string) []string {
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(diff, "\n") {
		var p string
		switch {
		case strings.HasPrefix(line, "+++ "):
			p = strings.TrimPrefix(line, "+++ ")
		case strings.HasPrefix(line, "--- "):
			p = strings.TrimPrefix(line, "--- ")
		default:
			continue
		}
		if i := strings.IndexByte(p, '\t'); i >= 0 {
			p = p[:i]
		}
		if p == "/dev/null" {
			continue
		}
		p = strings.TrimPrefix(strings.TrimPrefix(p, "a/"), "b/")
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
