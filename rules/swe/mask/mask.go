// Package mask turns trajectories into SFT examples with step-level error
// masking: an assistant turn whose tool result shows an error gets
// turn_mask = true (no loss), unless its command reproduces the bug or
// runs tests, where errors are expected. Every turn stays in the example:
// a masked turn is still context for the turns after it.
//
// Default error patterns (regular expressions over a turn's tool results):
//
//	traceback          Traceback \(most recent call last\)
//	command_not_found  command not found
//	no_such_file       No such file or directory
//	syntax_error       (SyntaxError|IndentationError|TabError):
//	nonzero_exit       exit code [1-9][0-9]*            (OpenHands: "[The command completed with exit code 1.]")
//	editor_error       No replacement was performed|did not appear verbatim|Invalid `?path`? parameter|is not a valid path|does not exist\. Please provide a valid path
//	tool_error         (?i)invalid tool call|unknown tool|missing required (parameter|argument)|parameter `?\w+`? is required|invalid arguments
//
// A tool call that names none of the four tools or whose arguments are not
// a JSON object is masked too ("invalid_tool_call").
//
// Default exempt patterns (over the tool call's arguments):
//
//	pytest|py\.test|unittest|nosetests|\btox\b|runtests|manage\.py test|\bmake test|reproduc|repro\w*\.py|\btest_\w*\.py|_test\.py
package mask

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/legobuild/lego/rules/swe/format"
)

// Pattern is a named regular expression.
type Pattern struct {
	Name string
	Re   *regexp.Regexp
	t    *trigger
}

// DefaultErrors are the error patterns used when none are given.
var DefaultErrors = []string{
	`traceback=Traceback \(most recent call last\)`,
	`command_not_found=command not found`,
	`no_such_file=No such file or directory`,
	`syntax_error=(SyntaxError|IndentationError|TabError):`,
	`nonzero_exit=exit code [1-9][0-9]*`,
	"editor_error=No replacement was performed|did not appear verbatim|Invalid `?path`? parameter|is not a valid path|does not exist\\. Please provide a valid path",
	"tool_error=(?i)invalid tool call|unknown tool|missing required (parameter|argument)|parameter `?\\w+`? is required|invalid arguments",
}

// DefaultExempt are the exempt patterns used when none are given.
var DefaultExempt = []string{
	`tests=pytest|py\.test|unittest|nosetests|\btox\b|runtests|manage\.py test|\bmake test|\btest_\w*\.py|_test\.py`,
	`reproduce=reproduc|repro\w*\.py`,
}

// Compile reads patterns written "name=regex" or just "regex" (named by
// itself).
func Compile(specs []string) ([]Pattern, error) {
	out := make([]Pattern, 0, len(specs))
	for _, s := range specs {
		name, re := s, s
		if i := strings.IndexByte(s, '='); i > 0 && isName(s[:i]) {
			name, re = s[:i], s[i+1:]
		}
		r, err := regexp.Compile(re)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %v", s, err)
		}
		out = append(out, Pattern{Name: name, Re: r, t: triggerOf(r)})
	}
	return out, nil
}

func isName(s string) bool {
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
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

var knownTools = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range format.Tools {
		m[t] = true
	}
	return m
}()

// Decide returns one decision per assistant message of t, in order.
func (m *Masker) Decide(t *format.Trajectory) []Decision {
	var out []Decision
	for i, msg := range t.Messages {
		if msg.Role != "assistant" {
			continue
		}
		d := Decision{Message: i}
		if len(msg.ToolCalls) == 0 || m.off {
			out = append(out, d)
			continue
		}
		for _, c := range msg.ToolCalls {
			if !knownTools[c.Function.Name] || !format.ObjectJSON(c.Function.Arguments) {
				d.Masked, d.Reason = true, "invalid_tool_call"
			}
		}
		if d.Masked {
			out = append(out, d)
			continue
		}
		results := resultsOf(t.Messages, i)
		errName := ""
		hit := make([]bool, len(m.errors))
		for k, r := range results {
			if r.Raw != nil && m.errScan.rawCandidates(r.Raw, hit) {
				continue
			}
			m.errScan.candidates(results.text(k), hit)
		}
		for pi, p := range m.errors {
			if !hit[pi] {
				continue
			}
			for k := range results {
				if p.Re.MatchString(results.text(k)) {
					errName = p.Name
					break
				}
			}
			if errName != "" {
				break
			}
		}
		if errName != "" {
			ex := make([]bool, len(m.exempt))
			for _, c := range msg.ToolCalls {
				m.exScan.candidates(c.Function.Arguments, ex)
			}
			for pi, p := range m.exempt {
				for _, c := range msg.ToolCalls {
					if d.Exempt == "" && ex[pi] && p.Re.MatchString(c.Function.Arguments) {
						d.Exempt = p.Name
					}
				}
			}
			if d.Exempt == "" {
				d.Masked, d.Reason = true, errName
			}
		}
		out = append(out, d)
	}
	return out
}

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
// needs it (DecodeForSFT leaves it as raw JSON text).
type results []format.Message

func (r results) text(k int) string {
	if m := &r[k]; m.Raw != nil && m.Content == "" {
		m.Content = m.Raw.String()
	}
	return r[k].Content
}

// Stats count what masking did.
type Stats struct {
	Examples   int            `json:"examples"`
	Turns      int            `json:"turns"`
	Masked     int            `json:"masked_turns"`
	Exempted   int            `json:"exempted_turns"`
	PerPattern map[string]int `json:"masked_per_pattern"`
	PerExempt  map[string]int `json:"exempted_per_pattern"`
}

// Add counts one example's decisions.
func (s *Stats) Add(ds []Decision) {
	if s.PerPattern == nil {
		s.PerPattern, s.PerExempt = map[string]int{}, map[string]int{}
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
	e := &format.SFT{InstanceID: t.InstanceID, NumTurns: len(ds), Tools: format.ToolSchemas}
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
