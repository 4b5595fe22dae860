package format

import (
	"encoding/json"
	"fmt"
	"strings"
	"unsafe"
)

// SFT formats: LLaMA-Factory's "sharegpt" layout, and its OpenAI-messages
// variant (also loaded with formatting "sharegpt", with other tags).
const (
	ShareGPT = "sharegpt"
	OpenAI   = "openai"
)

// Formats lists the SFT formats.
var Formats = []string{ShareGPT, OpenAI}

// CheckFormat says which formats exist when f is not one.
func CheckFormat(f string) error {
	for _, x := range Formats {
		if f == x {
			return nil
		}
	}
	return fmt.Errorf("unknown format %q (supported: %s)", f, strings.Join(Formats, ", "))
}

// Tags are a format's LLaMA-Factory column and role names.
type Tags struct {
	Messages    string `json:"-"` // column of the message list
	RoleTag     string `json:"role_tag"`
	ContentTag  string `json:"content_tag"`
	UserTag     string `json:"user_tag"`
	AssistTag   string `json:"assistant_tag"`
	ObserveTag  string `json:"observation_tag"`
	FunctionTag string `json:"function_tag"`
	SystemTag   string `json:"system_tag"`
}

// TagsOf returns the tags of an SFT format.
func TagsOf(f string) Tags {
	if f == OpenAI {
		return Tags{Messages: "messages", RoleTag: "role", ContentTag: "content", UserTag: "user", AssistTag: "assistant",
			ObserveTag: "tool", FunctionTag: "function_call", SystemTag: "system"}
	}
	return Tags{Messages: "conversations", RoleTag: "from", ContentTag: "value", UserTag: "human", AssistTag: "gpt",
		ObserveTag: "observation", FunctionTag: "function_call", SystemTag: "system"}
}

// DatasetInfo is one entry of LLaMA-Factory's dataset_info.json.
type DatasetInfo struct {
	FileName   string            `json:"file_name"`
	Formatting string            `json:"formatting"`
	Columns    map[string]string `json:"columns"`
	Tags       Tags              `json:"tags"`
}

// InfoFor describes a JSONL file of format f.
func InfoFor(file, f string) DatasetInfo {
	t := TagsOf(f)
	return DatasetInfo{FileName: file, Formatting: "sharegpt",
		Columns: map[string]string{"messages": t.Messages, "system": "system", "tools": "tools"}, Tags: t}
}

// Text is a JSON string's body: escaped, without the quotes. SFT data is
// kept in this form from input to output, so the bulk of a trajectory is
// copied, not decoded and encoded again.
type Text []byte

// Escape turns a string into Text.
func Escape(s string) Text { return Text(appendEscaped(nil, s)) }

// String decodes the text.
func (t Text) String() string {
	s, err := str(append(append([]byte{'"'}, t...), '"'))
	if err != nil {
		var out string
		json.Unmarshal(append(append([]byte{'"'}, t...), '"'), &out)
		return out
	}
	return s
}

// Turn is one SFT message. Mask is set on assistant-side messages only:
// true means the turn is not trained on (the SWE-Lego trainer's turn_mask).
type Turn struct {
	Role string // user, assistant, function_call, observation
	Text Text
	Mask *bool
}

// SFT is one training example built from a trajectory: alternating
// prompt-side (user, observation) and response-side (assistant,
// function_call) turns, as LLaMA-Factory requires. It is written with
// AppendJSON.
type SFT struct {
	InstanceID string
	NumTurns   int   // assistant turns of the source trajectory
	Resolved   *bool // nil when unknown
	System     Text
	Tools      string // JSON list of the tools' schemas
	Turns      []Turn
}

func tagOf(t Tags, role string) string {
	switch role {
	case "user":
		return t.UserTag
	case "assistant":
		return t.AssistTag
	case "function_call":
		return t.FunctionTag
	case "observation":
		return t.ObserveTag
	}
	return role
}

// SFTHeader is what curriculum needs of an SFT example.
type SFTHeader struct {
	InstanceID string `json:"instance_id"`
	Turns      int    `json:"turns"`
	Resolved   *bool  `json:"resolved"`
}

// DecodeSFTHeader checks an SFT example of the layout tags describe (every
// value JSON, every string valid, each message an object with a role and
// a text content) and reads its header. Turns is counted from the
// messages, as the masking counts them (runs of assistant-side messages),
// never read from the record. On an error, the header is the zero one.
func DecodeSFTHeader(tags Tags, at Loc, b []byte) (SFTHeader, error) {
	var h SFTHeader
	d := &rdec{at: at}
	if kind(b) != "object" {
		return h, d.bad(nil, "not a JSON object")
	}
	sawMessages := false
	_, err := objectP(b, func(k string, v []byte) (n int, err error) {
		switch k {
		case "instance_id":
			h.InstanceID, n, err = d.str(key(k), v)
		case "resolved":
			h.Resolved, n, err = d.flagSet(key(k), v)
		case "turns":
			_, n, err = d.integer(key(k), v)
		case tags.Messages:
			sawMessages = true
			prev := ""
			h.Turns = 0
			n, err = d.list(key(k), v, func(i int, v []byte) (int, error) {
				f := key(k).at(i)
				role, haveText := "", false
				n, err := d.object(f, v, func(mk string, mv []byte) (n int, err error) {
					switch mk {
					case tags.RoleTag:
						role, n, err = d.view(f.sub(mk), mv)
					case tags.ContentTag:
						if kind(mv) != "string" {
							return 0, d.want(f.sub(mk), "string", mv)
						}
						haveText = true
						_, n, err = d.text(f.sub(mk), mv)
					case "turn_mask":
						_, n, err = d.flag(f.sub(mk), mv)
					default:
						n, err = d.check(f.sub(mk), mv)
					}
					return n, err
				})
				if err != nil {
					return 0, err
				}
				if role == "" || !haveText {
					return 0, d.bad(f, "a message needs %q and %q", tags.RoleTag, tags.ContentTag)
				}
				if role == tags.AssistTag && prev != tags.AssistTag {
					h.Turns++
				}
				prev = role
				return n, nil
			})
		default:
			n, err = d.check(key(k), v)
		}
		return n, err
	})
	if err != nil {
		return SFTHeader{}, asLocated(d, nil, err)
	}
	if !sawMessages {
		return SFTHeader{}, d.bad(key(tags.Messages), "missing: an SFT example needs its messages")
	}
	return h, nil
}

// ToolSchemas is the JSON of the four tools' OpenAI function schemas, the
// "tools" column of every example.
var ToolSchemas = func() string {
	str := map[string]any{"type": "string"}
	intT := map[string]any{"type": "integer"}
	fn := func(name, desc string, props map[string]any, req ...string) map[string]any {
		return map[string]any{"type": "function", "function": map[string]any{"name": name, "description": desc,
			"parameters": map[string]any{"type": "object", "properties": props, "required": req}}}
	}
	tools := []any{
		fn("execute_bash", "Run a bash command.", map[string]any{"command": str, "is_input": str, "timeout": intT}, "command"),
		fn("str_replace_editor", "View, create and edit files.", map[string]any{"command": str, "path": str, "file_text": str,
			"old_str": str, "new_str": str, "insert_line": intT, "view_range": map[string]any{"type": "array", "items": intT}}, "command", "path"),
		fn("think", "Think without acting.", map[string]any{"thought": str}, "thought"),
		fn("finish", "Finish the task.", map[string]any{"message": str}),
	}
	b, _ := json.Marshal(tools)
	return string(b)
}()

// CallJSON renders tool calls as {"name": ..., "arguments": {...}} for one
// call, a list for several. Valid arguments are kept as the model wrote
// them, compacted (no re-encoding through Go maps: this runs for every
// turn of every trajectory); others stay a string.
func CallJSON(calls []ToolCall) string { return string(AppendCallJSON(nil, calls)) }

// AppendCallJSON appends what CallJSON returns.
func AppendCallJSON(b []byte, calls []ToolCall) []byte {
	if len(calls) > 1 {
		b = append(b, '[')
	}
	for i, c := range calls {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, c.Function.Name)
		b = append(b, `,"arguments":`...)
		var ok bool
		if b, ok = AppendCompact(b, c.Function.Arguments); !ok {
			b = appendString(b, c.Function.Arguments)
		}
		b = append(b, '}')
	}
	if len(calls) > 1 {
		b = append(b, ']')
	}
	return b
}

// AppendEscaped appends b as the body of a JSON string, escaped as
// encoding/json escapes it.
func AppendEscaped(dst Text, b []byte) Text {
	return appendEscaped(dst, unsafe.String(unsafe.SliceData(b), len(b)))
}
