package format

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// One decoder reads every trajectory, whatever its shape, for the
// filter, the masking and the curriculum alike, so they agree on every
// record. It reads the record's bytes once with the scanner: member names
// match exactly (case matters: "Resolved" is not "resolved"), a member
// given twice counts the last time, null is the same as absent, and every
// value is checked to be JSON, members lego does not use included. A
// string must be valid UTF-8 and JSON: a bad one is an error naming the
// record and the field, in every tool (nothing is replaced). Contents are
// kept as JSON text (Message.Raw), not decoded, so the bulk of a record is
// copied to the output as it stood.

// Shapes of trajectory records (see shapes.go).
const (
	ShapeMessages  = "messages"
	ShapeOpenHands = "openhands_events"
	ShapeSWEAgent  = "sweagent"
	ShapeChatML    = "chatml"
	ShapeNebius    = "nebius"
)

// Shapes lists the shapes, for messages.
var Shapes = []string{ShapeMessages, ShapeOpenHands, ShapeSWEAgent, ShapeChatML, ShapeNebius}

// CheckShape says which shapes exist when s is not one ("" = detect).
func CheckShape(s string) error {
	if s == "" {
		return nil
	}
	for _, x := range Shapes {
		if s == x {
			return nil
		}
	}
	return fmt.Errorf("unknown trajectory format %q (supported: %s)", s, strings.Join(Shapes, ", "))
}

// rdec decodes one record. Its methods get a value as the rest of the
// record from the value's first byte and return how many bytes it took
// (see objectP).
type rdec struct {
	at Loc
}

// fpath is where a value is in its record ("messages[3].content"), built
// into a string only for an error: making one for every member of every
// record cost a fifth of the decoder's time. Paths live on the stack of
// the calls that walk the record.
type fpath struct {
	up  *fpath
	key string // may be a view of the record's bytes (String copies it)
	idx int    // an array's element, or -1
}

// key is the path of a record's member k.
func key(k string) *fpath { return &fpath{key: k, idx: -1} }

// sub is the path of member k of p.
func (p *fpath) sub(k string) *fpath { return &fpath{up: p, key: k, idx: -1} }

// at is the path of element i of the array at p.
func (p *fpath) at(i int) *fpath { return &fpath{up: p.up, key: p.key, idx: i} }

func (p *fpath) String() string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	p.write(&b)
	return b.String()
}

// write writes the path to b, its outermost member first.
func (p *fpath) write(b *strings.Builder) {
	if p.up != nil {
		p.up.write(b)
		b.WriteByte('.')
	}
	b.WriteString(p.key)
	if p.idx >= 0 {
		b.WriteByte('[')
		b.WriteString(strconv.Itoa(p.idx))
		b.WriteByte(']')
	}
}

// bad is an error at field.
func (d *rdec) bad(field *fpath, format string, args ...any) error {
	return d.at.Err(field.String(), format, args...)
}

func (d *rdec) want(field *fpath, want string, v []byte) error {
	return d.bad(field, "got JSON %s, want %s", kind(v), want)
}

// check is v, a value lego does not use, checked to be JSON.
func (d *rdec) check(field *fpath, v []byte) (int, error) {
	c := compactor{s: v}
	if v[0] != '{' && v[0] != '[' && v[0] != '"' {
		c.s = v[:litLen(v)]
		if c.value() && c.end() {
			return c.i, nil
		}
		return 0, d.badJSON(field, c.s)
	}
	if c.value() {
		return c.i, nil
	}
	end, err := skipValue(v, 0)
	if err != nil {
		return 0, err
	}
	return 0, d.badJSON(field, v[:end])
}

// skip is a value walked no further, checked already.
func skip(v []byte) (int, error) { return skipValue(v, 0) }

// badJSON says what is wrong in v, which compactor refused.
func (d *rdec) badJSON(field *fpath, v []byte) error {
	if !utf8.Valid(v) {
		i := 0
		for i < len(v) {
			r, n := utf8.DecodeRune(v[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		return d.bad(field, "invalid UTF-8 at byte %d of the value", i)
	}
	if hasControl(v) {
		return d.bad(field, "a control character inside a string (not JSON)")
	}
	return d.bad(field, "not JSON (a bad escape or value)")
}

// str decodes a string member (null = "").
// firstStr reads a string into *dst unless a member read earlier set it
// (a record with two patch members keeps the first); either way the value
// is checked.
func (d *rdec) firstStr(field *fpath, v []byte, dst *string) (int, error) {
	if *dst != "" {
		return d.check(field, v)
	}
	var n int
	var err error
	*dst, n, err = d.str(field, v)
	return n, err
}

func (d *rdec) str(field *fpath, v []byte) (string, int, error) {
	v, err := scalar(v)
	if err != nil {
		return "", 0, err
	}
	if string(v) == "null" {
		return "", 4, nil
	}
	if kind(v) != "string" {
		return "", 0, d.want(field, "string", v)
	}
	s, err := str(v)
	if err != nil {
		return "", 0, d.badJSON(field, v)
	}
	return s, len(v), nil
}

// view is str for a string only compared, never kept: when it has no
// escape, the string is a view of the record's bytes, not a copy.
func (d *rdec) view(field *fpath, v []byte) (string, int, error) {
	if len(v) > 0 && v[0] == '"' {
		if end, ok := validString(v, 0); ok && bytes.IndexByte(v[1:end-1], '\\') < 0 {
			return unsafe.String(unsafe.SliceData(v[1:]), end-2), end, nil
		}
	}
	return d.str(field, v)
}

func (d *rdec) flag(field *fpath, v []byte) (bool, int, error) {
	v, err := scalar(v)
	if err != nil {
		return false, 0, err
	}
	switch string(v) {
	case "true":
		return true, 4, nil
	case "false", "null":
		return false, len(v), nil
	}
	return false, 0, d.want(field, "bool", v)
}

func (d *rdec) integer(field *fpath, v []byte) (int64, int, error) {
	v, err := scalar(v)
	if err != nil {
		return 0, 0, err
	}
	if string(v) == "null" {
		return 0, 4, nil
	}
	n, err := intOf(v)
	if err != nil {
		return 0, 0, d.want(field, "integer", v)
	}
	return n, len(v), nil
}

// textString reads a string content (not recursive: the paths given to
// text stay on the stack).
func (d *rdec) textString(field *fpath, v []byte) (Text, int, error) {
	if end, ok := validString(v, 0); ok {
		return Text(v[1 : end-1]), end, nil
	}
	end, err := skipString(v, 0)
	if err != nil {
		return nil, 0, err
	}
	body := v[1 : end-1]
	if !validBody(body) {
		return nil, 0, d.badJSON(field, v[:end])
	}
	return Text(body), end, nil
}

// text reads a content: a string, null, or a list of parts whose text
// parts are joined by newlines (image and other parts are dropped).
func (d *rdec) text(field *fpath, v []byte) (Text, int, error) {
	switch kind(v) {
	case "null":
		return Text{}, litLen(v), nil
	case "string":
		return d.textString(field, v)
	case "array":
		var out Text
		n := 0
		size, err := arrayP(v, func(p []byte) (int, error) {
			var part Text
			var size int
			switch kind(p) {
			case "string":
				t, k, err := d.textString(field, p)
				if err != nil {
					return 0, err
				}
				part, size = t, k
			case "object":
				typ, txt := "", Text(nil)
				k, err := objectP(p, func(k string, pv []byte) (n int, err error) {
					switch k {
					case "type":
						typ, n, err = d.str(field.sub("type"), pv)
					case "text":
						txt, n, err = d.text(field.sub("text"), pv)
					default:
						n, err = d.check(field.sub(k), pv)
					}
					return n, err
				})
				if err != nil {
					return 0, err
				}
				if typ != "" && typ != "text" || txt == nil {
					return k, nil
				}
				part, size = txt, k
			default:
				return 0, d.want(field, "a text part", p)
			}
			if n > 0 {
				out = append(out, `\n`...)
			}
			out = append(out, part...)
			n++
			return size, nil
		})
		if err != nil {
			return nil, 0, asLocated(d, field, err)
		}
		if out == nil {
			out = Text{}
		}
		return out, size, nil
	}
	return nil, 0, d.want(field, "string or a list of parts", v)
}

// asLocated turns a scanner's error into one naming the record and field.
func asLocated(d *rdec, field *fpath, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*LineError); ok {
		return err
	}
	return d.bad(field, "not JSON: %v", err)
}

// object calls fn for each member of the object v (null: none).
func (d *rdec) object(field *fpath, v []byte, fn func(k string, v []byte) (int, error)) (int, error) {
	if v[0] != '{' {
		s, err := scalar(v)
		if err != nil {
			return 0, err
		}
		if string(s) == "null" {
			return 4, nil
		}
		return 0, d.want(field, "object", v)
	}
	n, err := objectP(v, fn)
	return n, asLocated(d, field, err)
}

// list calls fn for each element of the array v (null: none).
func (d *rdec) list(field *fpath, v []byte, fn func(i int, v []byte) (int, error)) (int, error) {
	if v[0] != '[' {
		s, err := scalar(v)
		if err != nil {
			return 0, err
		}
		if string(s) == "null" {
			return 4, nil
		}
		return 0, d.want(field, "array", v)
	}
	i := 0
	n, err := arrayP(v, func(e []byte) (int, error) {
		n, err := fn(i, e)
		i++
		return n, err
	})
	return n, asLocated(d, field, err)
}

// tools keeps a list of tool schemas, checked and compacted.
func (d *rdec) tools(field *fpath, v []byte) ([]byte, int, error) {
	if v[0] == '[' {
		// Compacted in the pass that finds its end, most of the time.
		c := compactor{s: v, emit: true}
		if c.value() {
			if string(c.dst) == "[]" {
				return nil, c.i, nil
			}
			return c.dst, c.i, nil
		}
	}
	v, err := scalar(v)
	if err != nil {
		return nil, 0, err
	}
	if v[0] == '[' {
		end, err := skipValue(v, 0)
		if err != nil {
			return nil, 0, err
		}
		v = v[:end]
	}
	size := len(v)
	if string(v) == "null" {
		return nil, size, nil
	}
	if kind(v) == "string" {
		// Some exports hold the list JSON-encoded in a string.
		s, _, err := d.str(field, v)
		if err != nil {
			return nil, 0, err
		}
		v = []byte(strings.TrimSpace(s))
		if len(v) == 0 {
			return nil, size, nil
		}
	}
	if kind(v) != "array" {
		return nil, 0, d.want(field, "a list of tool schemas", v)
	}
	out, ok := AppendCompact(nil, string(v))
	if !ok {
		return nil, 0, d.badJSON(field, v)
	}
	if string(out) == "[]" {
		return nil, size, nil
	}
	return out, size, nil
}

// toolCall reads an OpenAI tool call.
func (d *rdec) toolCall(field *fpath, v []byte) (ToolCall, int, error) {
	var c ToolCall
	n, err := d.object(field, v, func(k string, v []byte) (n int, err error) {
		switch k {
		case "id":
			c.ID, n, err = d.str(field.sub("id"), v)
		case "type":
			c.Type, n, err = d.str(field.sub("type"), v)
		case "function":
			n, err = d.object(field.sub("function"), v, func(k string, v []byte) (n int, err error) {
				switch k {
				case "name":
					c.Function.Name, n, err = d.str(field.sub("function").sub("name"), v)
				case "arguments":
					c.Function.Arguments, n, err = d.arguments(field.sub("function").sub("arguments"), v)
				default:
					n, err = d.check(field.sub("function").sub(k), v)
				}
				return n, err
			})
		default:
			n, err = d.check(field.sub(k), v)
		}
		return n, err
	})
	return c, n, err
}

// arguments are a JSON string holding the arguments, or the arguments
// themselves (some exports decode them): either way, JSON text.
func (d *rdec) arguments(field *fpath, v []byte) (string, int, error) {
	switch kind(v) {
	case "string", "null":
		return d.str(field, v)
	}
	n, err := d.check(field, v)
	if err != nil {
		return "", 0, err
	}
	return string(v[:n]), n, nil
}

// messages reads an OpenAI-style message list.
func (d *rdec) messages(field *fpath, v []byte, t *Trajectory) (int, error) {
	t.Messages = t.Messages[:0]
	return d.list(field, v, func(i int, v []byte) (int, error) {
		m, n, err := d.message(field.at(i), v)
		t.Messages = append(t.Messages, m)
		return n, err
	})
}

func (d *rdec) message(field *fpath, v []byte) (Message, int, error) {
	m := Message{Raw: Text{}}
	n, err := d.object(field, v, func(k string, v []byte) (n int, err error) {
		switch k {
		case "role":
			m.Role, n, err = d.str(field.sub("role"), v)
		case "content":
			m.Raw, n, err = d.text(field.sub("content"), v)
		case "tool_calls":
			m.ToolCalls = nil
			n, err = d.list(field.sub("tool_calls"), v, func(i int, v []byte) (int, error) {
				c, n, err := d.toolCall(field.sub("tool_calls").at(i), v)
				m.ToolCalls = append(m.ToolCalls, c)
				return n, err
			})
		case "tool_call_id":
			m.ToolCallID, n, err = d.str(field.sub("tool_call_id"), v)
		case "name":
			m.Name, n, err = d.str(field.sub("name"), v)
		case "action":
			m.Action, n, err = d.str(field.sub("action"), v)
		case "source_mask":
			m.SourceMask, n, err = d.flag(field.sub("source_mask"), v)
		case "corrections":
			m.Corrections = nil
			n, err = d.list(field.sub("corrections"), v, func(i int, v []byte) (int, error) {
				s, n, err := d.str(field.sub("corrections"), v)
				m.Corrections = append(m.Corrections, s)
				return n, err
			})
		default:
			n, err = d.check(field.sub(k), v)
		}
		return n, err
	})
	m.Role = canonicalRole(m.Role)
	return m, n, err
}

// canonicalRole gives one name to a role the shapes spell two ways, so a
// trajectory written and read back keeps its roles.
func canonicalRole(r string) string {
	if r == "function" {
		return "tool" // OpenAI's older name for a tool result
	}
	return r
}

// common members of a record: lego's own, and the resolution flags the
// published sets use. It reports whether it knew k.
func (d *rdec) common(k string, v []byte, t *Trajectory, r *resolution) (bool, int, error) {
	var err error
	var n int
	switch k {
	case "instance_id":
		t.InstanceID, n, err = d.str(key(k), v)
	case "resolved":
		r.top, n, err = d.flagSet(key(k), v)
	case "semi_resolved":
		t.SemiResolved, n, err = d.flag(key(k), v)
	case "report":
		n, err = d.object(key(k), v, func(rk string, rv []byte) (n int, err error) {
			if rk == "resolved" {
				r.report, n, err = d.flagSet(key(k).sub("resolved"), rv)
				return n, err
			}
			return d.check(key(k).sub(rk), rv)
		})
	case "teacher":
		t.Teacher, n, err = d.str(key(k), v)
	case "seed":
		t.Seed, n, err = d.integer(key(k), v)
	case "sample":
		var s int64
		s, n, err = d.integer(key(k), v)
		t.Sample = int(s)
	case "turns":
		// Recomputed from the messages, never trusted; still an integer.
		_, n, err = d.integer(key(k), v)
	case "patch":
		t.Patch, n, err = d.str(key(k), v)
	case "gold_patch":
		t.GoldPatch, n, err = d.str(key(k), v)
	case "exit":
		t.Exit, n, err = d.str(key(k), v)
	case "tools":
		t.Tools, n, err = d.tools(key(k), v)
	case "infra_error":
		if s, _ := scalar(v); string(s) == "null" {
			return true, 4, nil
		}
		ie := &InfraError{}
		n, err = d.object(key(k), v, func(ik string, iv []byte) (n int, err error) {
			switch ik {
			case "class":
				ie.Class, n, err = d.str(key(k).sub("class"), iv)
			case "message":
				ie.Message, n, err = d.str(key(k).sub("message"), iv)
			default:
				n, err = d.check(key(k).sub(ik), iv)
			}
			return n, err
		})
		t.InfraError = ie
	case "source_format":
		_, n, err = d.str(key(k), v)
	default:
		return false, 0, nil
	}
	return true, n, err
}

// resolution gathers where a record says whether it resolved: the first
// of these that is present counts.
type resolution struct {
	top, report, nested *bool
}

func (r resolution) value() bool {
	for _, p := range []*bool{r.top, r.report, r.nested} {
		if p != nil {
			return *p
		}
	}
	return false
}

func (d *rdec) flagSet(field *fpath, v []byte) (*bool, int, error) {
	if s, err := scalar(v); err == nil && string(s) == "null" {
		return nil, 4, nil
	}
	b, n, err := d.flag(field, v)
	return &b, n, err
}

// DecodeTrajectory decodes a record of the given shape ("" = detect it
// from this record) into lego's trajectory: messages in OpenAI's roles
// (system, user, assistant, tool), every observation a tool message,
// Turns counted from them.
func DecodeTrajectory(shape string, at Loc, b []byte) (*Trajectory, error) {
	d := &rdec{at: at}
	if kind(b) != "object" {
		i := skipSpace(b, 0)
		return nil, d.bad(nil, "not a JSON object (%s)", kind(b[i:]))
	}
	if shape == "" {
		shape = DetectShape(b)
	}
	t := &Trajectory{Shape: shape}
	if m, ok := messagePool.Get().(*[]Message); ok {
		t.Messages = (*m)[:0]
	}
	var r resolution
	var err error
	switch shape {
	case ShapeMessages, ShapeChatML:
		err = d.messagesRecord(b, t, &r, shape == ShapeChatML)
	case ShapeOpenHands:
		err = d.openHandsRecord(b, t, &r)
	case ShapeSWEAgent:
		err = d.sweAgentRecord(b, t, &r)
	case ShapeNebius:
		err = d.nebiusRecord(b, t, &r)
	default:
		return nil, CheckShape(shape)
	}
	if err != nil {
		return nil, err
	}
	if t.InstanceID == "" && shape == ShapeSWEAgent {
		// SWE-agent names the file after the instance.
		t.InstanceID = strings.TrimSuffix(filepath.Base(at.File), ".traj")
	}
	t.Resolved = r.value()
	t.Turns = t.AssistantTurns()
	return t, nil
}

func (d *rdec) messagesRecord(b []byte, t *Trajectory, r *resolution, chatml bool) error {
	_, err := objectP(b, func(k string, v []byte) (int, error) {
		if ok, n, err := d.common(k, v, t, r); ok {
			return n, err
		}
		if k == "messages" {
			return d.messages(key(k), v, t)
		}
		return d.check(key(k), v)
	})
	if err != nil {
		return asLocated(d, nil, err)
	}
	if chatml {
		observationsAfterAssistant(t.Messages, "user")
	}
	return nil
}

// observationsAfterAssistant makes every message of role obs that comes
// after the first assistant message a tool result: ChatML exports send
// tool output back as user messages.
func observationsAfterAssistant(msgs []Message, obs string) {
	seen := false
	for i := range msgs {
		switch msgs[i].Role {
		case "assistant":
			seen = true
		case obs:
			if seen {
				msgs[i].Role = "tool"
			}
		}
	}
}

// AssistantTurns counts the turns: runs of consecutive assistant messages
// (an SFT example joins them into one), so that the filter, the masking
// and the curriculum count alike.
func (t *Trajectory) AssistantTurns() int {
	n := 0
	prev := ""
	for _, m := range t.Messages {
		if m.Role == "assistant" && prev != "assistant" {
			n++
		}
		prev = m.Role
	}
	return n
}

// content is a message's text as JSON text.
func content(m *Message) Text {
	if m.Raw != nil {
		return m.Raw
	}
	return Escape(m.Content)
}

// AppendJSON appends t as one line of lego's trajectory shape (no
// newline): what the filter writes, read back as ShapeMessages.
func (t *Trajectory) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"instance_id":`...)
	dst = appendString(dst, t.InstanceID)
	dst = append(dst, `,"resolved":`...)
	dst = strconv.AppendBool(dst, t.Resolved)
	if t.SemiResolved {
		dst = append(dst, `,"semi_resolved":true`...)
	}
	dst = append(dst, `,"turns":`...)
	dst = strconv.AppendInt(dst, int64(t.Turns), 10)
	str := func(k, v string) {
		if v != "" {
			dst = append(append(append(dst, ',', '"'), k...), '"', ':')
			dst = appendString(dst, v)
		}
	}
	str("teacher", t.Teacher)
	if t.Seed != 0 {
		dst = strconv.AppendInt(append(dst, `,"seed":`...), t.Seed, 10)
	}
	str("patch", t.Patch)
	str("gold_patch", t.GoldPatch)
	str("exit", t.Exit)
	if t.Sample != 0 {
		dst = strconv.AppendInt(append(dst, `,"sample":`...), int64(t.Sample), 10)
	}
	str("source_format", t.Shape)
	if len(t.Tools) > 0 {
		dst = append(append(dst, `,"tools":`...), t.Tools...)
	}
	dst = append(dst, `,"messages":[`...)
	for i := range t.Messages {
		m := &t.Messages[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"role":`...)
		dst = appendString(dst, m.Role)
		dst = append(dst, `,"content":"`...)
		dst = append(dst, content(m)...)
		dst = append(dst, '"')
		if len(m.ToolCalls) > 0 {
			dst = append(dst, `,"tool_calls":[`...)
			for j, c := range m.ToolCalls {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, `{"id":`...)
				dst = appendString(dst, c.ID)
				dst = append(dst, `,"type":`...)
				dst = appendString(dst, c.Type)
				dst = append(dst, `,"function":{"name":`...)
				dst = appendString(dst, c.Function.Name)
				dst = append(dst, `,"arguments":`...)
				dst = appendString(dst, c.Function.Arguments)
				dst = append(dst, `}}`...)
			}
			dst = append(dst, ']')
		}
		str("tool_call_id", m.ToolCallID)
		str("name", m.Name)
		if len(m.Corrections) > 0 {
			dst = append(dst, `,"corrections":[`...)
			for j, c := range m.Corrections {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendString(dst, c)
			}
			dst = append(dst, ']')
		}
		str("action", m.Action)
		if m.SourceMask {
			dst = append(dst, `,"source_mask":true`...)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if t.InfraError != nil {
		dst = append(dst, `,"infra_error":{"class":`...)
		dst = appendString(dst, t.InfraError.Class)
		dst = append(dst, `,"message":`...)
		dst = appendString(dst, t.InfraError.Message)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// messagePool holds message lists for the next record: growing one for
// each record cost more than decoding its members.
var messagePool sync.Pool

// Free gives t's messages back to be reused: t must not be used after.
func (t *Trajectory) Free() {
	m := t.Messages
	clear(m[:cap(m)])
	m = m[:0]
	t.Messages = nil
	messagePool.Put(&m)
}
