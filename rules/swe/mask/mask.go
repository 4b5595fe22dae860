// Package mask turns trajectories into SFT examples with step-level error
// masking: an assistant turn whose observations (tool results) show an
// error gets turn_mask = true (no loss), unless the error came from a
// program it ran to reproduce the bug or run tests, where errors are
// expected. Every turn stays in the example: a masked turn is still
// context for the turns after it.
//
// Default error patterns, from the outputs of real agents (OpenHands,
// SWE-agent, SWE-smith) and of lego's own; regular expressions over a
// turn's observations, tried in this order, the first that matches naming
// the reason. The first three are errors of the agent's use of its tools
// and are never exempted (written "name!=regex"); the others are errors
// of a program it ran:
//
//	editor_error       OpenHands' str_replace_editor and lego's: No replacement was performed,
//	                   did not appear verbatim, Invalid `view_range`, `view_range` parameter is not
//	                   allowed, Invalid `path` parameter, is not a valid path, does not exist. Please
//	                   provide a valid path, File already exists at
//	format_error       SWE-agent: Your output was not formatted correctly, Malformed command, Your
//	                   proposed edit has introduced new syntax error(s), did not use any tool calls
//	tool_error         an observation starting "ERROR:" (OpenHands' ErrorObservation), invalid tool
//	                   call, unknown tool, missing required parameter, parameter `x` is required,
//	                   invalid arguments
//	timeout            command timed out, timed out after N seconds
//	traceback          Traceback (most recent call last)
//	syntax_error       SyntaxError: | IndentationError: | TabError:
//	command_not_found  command not found
//	no_such_file       No such file or directory
//	nonzero_exit       exit code N, N != 0 (OpenHands: "[The command completed with exit code 1.]",
//	                   "[Command finished with exit code 1]"; lego's "exit code 1")
//
// A tool call with no name, a name the trajectory's tool schemas do not
// list (when it carries them), or arguments that are not a JSON object is
// masked too ("invalid_tool_call"), and so is an assistant message its
// source set marked as not to be trained on ("source_mask", nebius').
//
// Default exempt patterns, over the turn's command (its tool calls'
// arguments, or for scaffolds that parse commands from text, the action:
// SWE-agent's, or the last ``` block of the message):
//
//	tests      pytest|py\.test|unittest|nosetests|\btox\b|runtests|manage\.py test|\bmake test|\btest_\w*\.py|_test\.py
//	reproduce  reproduc|repro\w*\.py
package mask

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/legobuild/lego/rules/swe/format"
)

// Pattern is a named regular expression. Never says an exempt command
// does not spare the turn: the error is the agent's use of a tool, not a
// program's output.
type Pattern struct {
	Name  string
	Re    *regexp.Regexp
	Never bool
	t     *trigger
}

// DefaultErrors are the error patterns used when none are given.
var DefaultErrors = []string{
	"editor_error!=No replacement was performed|did not appear verbatim|Invalid `?view_range`?|`?view_range`? parameter is not allowed|Invalid `?path`? parameter|is not a valid path|does not exist\\. Please provide a valid path|File already exists at",
	"format_error!=Your output was not formatted correctly|[Mm]alformed command|Your proposed edit has introduced new syntax error|did not use any tool calls",
	"tool_error!=(?m)^ERROR:|(?i)invalid tool call|unknown tool|missing required (parameter|argument)|parameter `?\\w+`? is required|invalid arguments",
	`timeout=(?i)command timed out|timed out after \d+ seconds`,
	`traceback=Traceback \(most recent call last\)`,
	`syntax_error=(SyntaxError|IndentationError|TabError):`,
	`command_not_found=command not found`,
	`no_such_file=No such file or directory`,
	`nonzero_exit=exit code [1-9][0-9]*`,
}

// DefaultExempt are the exempt patterns used when none are given.
var DefaultExempt = []string{
	`tests=pytest|py\.test|unittest|nosetests|\btox\b|runtests|manage\.py test|\bmake test|\btest_\w*\.py|_test\.py`,
	`reproduce=reproduc|repro\w*\.py`,
}

// Compile reads patterns written "name=regex", "name!=regex" (never
// exempted) or just "regex" (named by itself).
func Compile(specs []string) ([]Pattern, error) {
	out := make([]Pattern, 0, len(specs))
	for _, s := range specs {
		name, re, never := s, s, false
		if i := strings.IndexByte(s, '='); i > 0 {
			n := s[:i]
			if strings.HasSuffix(n, "!") && isName(n[:len(n)-1]) {
				name, re, never = n[:len(n)-1], s[i+1:], true
			} else if isName(n) {
				name, re = n, s[i+1:]
			}
		}
		r, err := regexp.Compile(re)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %v", s, err)
		}
		out = append(out, Pattern{Name: name, Re: r, Never: never, t: triggerOf(r)})
	}
	return out, nil
}

func isName(s string) bool {
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// Masker decides turn masks.
type Masker struct {
	off            bool // Off: nothing is masked
	errors, exempt []Pattern
	errScan        *multi
	exScan         *multi
}

// New makes a masker; nil or empty lists mean the defaults.
func New(errorSpecs, exemptSpecs []string) (*Masker, error) {
	if len(errorSpecs) == 0 {
		errorSpecs = DefaultErrors
	}
	if len(exemptSpecs) == 0 {
		exemptSpecs = DefaultExempt
	}
	m := &Masker{}
	var err error
	if m.errors, err = Compile(errorSpecs); err != nil {
		return nil, fmt.Errorf("error_patterns: %w", err)
	}
	if m.exempt, err = Compile(exemptSpecs); err != nil {
		return nil, fmt.Errorf("exempt_patterns: %w", err)
	}
	m.errScan, m.exScan = newMulti(m.errors), newMulti(m.exempt)
	return m, nil
}

// Off is the masker of an unmasked dataset (the ablation without error
// masking): every turn is trained on.
func Off() *Masker { return &Masker{off: true} }

// Decision is what happened to one assistant turn.
type Decision struct {
	Masked  bool
	Reason  string // the error pattern (or "invalid_tool_call") that masked it
	Exempt  string // the exempt pattern that spared an erroring turn
	Message int    // index of the assistant message in the trajectory
}

// Decide returns one decision per turn of t (a run of assistant
// messages: an SFT example joins them), in order. Decision.Message is the
// run's first message.
func (m *Masker) Decide(t *format.Trajectory) []Decision {
	var out []Decision
	known := toolNames(t.Tools)
	prev := ""
	for i := range t.Messages {
		msg := &t.Messages[i]
		role := prev
		prev = msg.Role
		if msg.Role != "assistant" {
			continue
		}
		d := m.decide(t.Messages, i, known)
		if role == "assistant" {
			// The same turn: masked if any part is.
			last := &out[len(out)-1]
			if d.Masked && !last.Masked {
				last.Masked, last.Reason = true, d.Reason
			}
			if last.Exempt == "" {
				last.Exempt = d.Exempt
			}
			continue
		}
		out = append(out, d)
	}
	return out
}

// decide judges the assistant message at i.
func (m *Masker) decide(msgs []format.Message, i int, known map[string]bool) Decision {
	msg := &msgs[i]
	d := Decision{Message: i}
	if m.off {
		return d
	}
	if msg.SourceMask {
		d.Masked, d.Reason = true, "source_mask"
		return d
	}
	for _, c := range msg.ToolCalls {
		if c.Function.Name == "" || known != nil && !known[c.Function.Name] || !format.ObjectJSON(c.Function.Arguments) {
			d.Masked, d.Reason = true, "invalid_tool_call"
			return d
		}
	}
	results := resultsOf(msgs, i)
	if len(results) == 0 {
		return d
	}
	hit := make([]bool, len(m.errors))
	for k, r := range results {
		if r.Raw != nil && m.errScan.rawCandidates(r.Raw, hit) {
			continue
		}
		m.errScan.candidates(results.text(k), hit)
	}
	var errPat *Pattern
	for pi := range m.errors {
		if !hit[pi] {
			continue
		}
		for k := range results {
			if m.errors[pi].Re.MatchString(results.text(k)) {
				errPat = &m.errors[pi]
				break
			}
		}
		if errPat != nil {
			break
		}
	}
	if errPat == nil {
		return d
	}
	if !errPat.Never {
		cmds := commands(msg)
		ex := make([]bool, len(m.exempt))
		for _, c := range cmds {
			m.exScan.candidates(c, ex)
		}
		for pi, p := range m.exempt {
			for _, c := range cmds {
				if d.Exempt == "" && ex[pi] && p.Re.MatchString(c) {
					d.Exempt = p.Name
				}
			}
		}
	}
	if d.Exempt == "" {
		d.Masked, d.Reason = true, errPat.Name
	}
	return d
}

// commands are what an assistant message ran, for the exempt patterns:
// its tool calls' arguments, else the action its scaffold parsed (or the
// last ``` block of its text, as SWE-agent parses it).
func commands(msg *format.Message) []string {
	if len(msg.ToolCalls) > 0 {
		out := make([]string, len(msg.ToolCalls))
		for i, c := range msg.ToolCalls {
			out[i] = c.Function.Arguments
		}
		return out
	}
	if msg.Action != "" {
		return []string{msg.Action}
	}
	text := msg.Content
	if text == "" && msg.Raw != nil {
		text = msg.Raw.String()
	}
	if end := strings.LastIndex(text, "```"); end > 0 {
		if start := strings.LastIndex(text[:end], "```"); start >= 0 {
			return []string{text[start+3 : end]}
		}
	}
	return []string{text}
}

// toolNames are the function names of a JSON list of tool schemas, nil
// when there are none (then any name goes). A dataset repeats one list in
// every record: the sets are kept by content.
func toolNames(tools []byte) map[string]bool {
	if len(tools) == 0 {
		return nil
	}
	key := xxhash.Sum64(tools)
	if v, ok := namesCache.Load(key); ok {
		return v.(map[string]bool)
	}
	names := map[string]bool{}
	var list []struct {
		Name     string `json:"name"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	json.Unmarshal(tools, &list)
	for _, t := range list {
		if t.Function.Name != "" {
			names[t.Function.Name] = true
		} else if t.Name != "" {
			names[t.Name] = true
		}
	}
	if len(names) == 0 {
		names = nil
	}
	namesCache.Store(key, names)
	return names
}

var namesCache sync.Map

// resultsOf returns the tool results answering the assistant message at
// i: the tool messages that follow it, up to the next non-tool message.
func resultsOf(msgs []format.Message, i int) results {
	j := i + 1
	for j < len(msgs) && msgs[j].Role == "tool" {
		j++
	}
	return msgs[i+1 : j]
}

// results are tool messages whose content is decoded only when a pattern
// needs it (DecodeTrajectory leaves it as JSON text).
type results []format.Message

func (r results) text(k int) string {
	if m := &r[k]; m.Raw != nil && m.Content == "" {
		m.Content = m.Raw.String()
	}
	return r[k].Content
}

// Stats count what masking did.
type Stats struct {
	Examples     int            `json:"examples"`
	Turns        int            `json:"turns"`
	Observations int            `json:"observations"`
	Masked       int            `json:"masked_turns"`
	Exempted     int            `json:"exempted_turns"`
	PerPattern   map[string]int `json:"masked_per_pattern"`
	PerExempt    map[string]int `json:"exempted_per_pattern"`
	// ToolSets counts the examples per set of tool schemas ("tool names
	// #digest", "none"): more than one means the dataset mixes them.
	ToolSets map[string]int `json:"tool_sets"`
	Warnings []string       `json:"warnings,omitempty"`
}

// Add counts one example's decisions.
func (s *Stats) Add(ds []Decision) {
	if s.PerPattern == nil {
		s.PerPattern, s.PerExempt, s.ToolSets = map[string]int{}, map[string]int{}, map[string]int{}
	}
	s.Examples++
	for _, d := range ds {
		s.Turns++
		if d.Masked {
			s.Masked++
			s.PerPattern[d.Reason]++
		}
		if d.Exempt != "" {
			s.Exempted++
			s.PerExempt[d.Exempt]++
		}
	}
}

// Build makes the SFT example of t with its turn masks. Prompt-side
// messages (user, tool results) and response-side ones (assistant) must
// alternate, as LLaMA-Factory requires: consecutive tool results are
// joined, consecutive assistant messages are joined (masked if any part
// is), and a final tool result with no answer after it is dropped.
// Contents are carried as JSON text (format.Text), copied from the input.
// An assistant message's tool calls are written after its text as
// <tool_call>{"name": ..., "arguments": ...}</tool_call> blocks, the
// form Qwen3's chat template gives them, so no thought is lost.
func Build(t *format.Trajectory, ds []Decision) (*format.SFT, error) {
	// The schemas the run was given: a model trained on other ones would
	// learn tools it is not given at inference.
	e := &format.SFT{InstanceID: t.InstanceID, NumTurns: len(ds), Tools: string(t.Tools)}
	resolved := t.Resolved
	e.Resolved = &resolved
	byMsg := map[int]Decision{}
	for _, d := range ds {
		byMsg[d.Message] = d
	}
	for i, msg := range t.Messages {
		switch msg.Role {
		case "system":
			e.System = text(msg)
			continue
		case "user", "tool":
			role := "user"
			if msg.Role == "tool" {
				role = "observation"
			}
			if n := len(e.Turns); n > 0 && e.Turns[n-1].Mask == nil {
				// Two prompt-side messages in a row.
				e.Turns[n-1].Text = join(e.Turns[n-1].Text, `\n`, text(msg))
				continue
			}
			e.Turns = append(e.Turns, format.Turn{Role: role, Text: text(msg)})
		case "assistant":
			if len(e.Turns) == 0 {
				return nil, fmt.Errorf("message %d: the trajectory starts with an assistant turn, not a prompt", i)
			}
			content := RenderAssistant(msg)
			masked := byMsg[i].Masked
			if n := len(e.Turns); e.Turns[n-1].Mask != nil {
				prev := e.Turns[n-1]
				merged := *prev.Mask || masked
				e.Turns[n-1] = format.Turn{Role: "assistant", Text: join(prev.Text, `\n\n`, content), Mask: &merged}
				continue
			}
			e.Turns = append(e.Turns, format.Turn{Role: "assistant", Text: content, Mask: &masked})
		}
	}
	if n := len(e.Turns); n > 0 && e.Turns[n-1].Mask == nil {
		e.Turns = e.Turns[:n-1]
	}
	if len(e.Turns) < 2 {
		return nil, fmt.Errorf("no assistant turn after a prompt")
	}
	return e, nil
}

// text is a message's content as JSON text: as it stood in the input when
// the decoder kept it, else escaped.
func text(m format.Message) format.Text {
	if m.Raw != nil {
		return m.Raw
	}
	return format.Escape(m.Content)
}

// join concatenates texts with an escaped separator.
func join(a format.Text, sep string, b format.Text) format.Text {
	out := make(format.Text, 0, len(a)+len(sep)+len(b))
	return append(append(append(out, a...), sep...), b...)
}

// RenderAssistant is an assistant message as SFT data holds it: its text,
// then each tool call as a <tool_call> block.
func RenderAssistant(m format.Message) format.Text {
	out := append(format.Text(nil), text(m)...)
	var block []byte
	for _, c := range m.ToolCalls {
		block = block[:0]
		if len(out) > 0 {
			block = append(block, '\n')
		}
		block = append(block, "<tool_call>\n"...)
		block = format.AppendCallJSON(block, []format.ToolCall{c})
		block = append(block, "\n</tool_call>"...)
		out = format.AppendEscaped(out, block)
	}
	return out
}
