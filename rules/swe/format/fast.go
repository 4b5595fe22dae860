package format

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Every step decodes every trajectory whole and writes every record:
// with encoding/json, the map-based marshalling and the validate-then-
// decode of 60 KB lines cost most of their time. These are the string
// and number operations of the decoder and the writers, byte-compatible
// with encoding/json (tests compare them on generated and hand-made
// data).

// errFallback says: this is no string or number the fast paths take (the
// caller reports it).
var errFallback = fmt.Errorf("use encoding/json")

// common returns the strings every message repeats (roles, tool names,
// "function") instead of allocating a copy each time, some twenty million
// times for a gigabyte of trajectories. A switch, not a map: hashing each
// candidate cost more than the copy it saved.
func common(v []byte) (string, bool) {
	switch string(v) {
	case "system":
		return "system", true
	case "user":
		return "user", true
	case "assistant":
		return "assistant", true
	case "tool":
		return "tool", true
	case "function":
		return "function", true
	case "execute_bash":
		return "execute_bash", true
	case "str_replace_editor":
		return "str_replace_editor", true
	case "think":
		return "think", true
	case "finish":
		return "finish", true
	}
	return "", false
}

// str decodes a raw JSON string as encoding/json does, or fails.
func str(v []byte) (string, error) {
	if len(v) == 4 && string(v) == "null" {
		return "", nil
	}
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", errFallback
	}
	v = v[1 : len(v)-1]
	if s, ok := common(v); ok {
		return s, nil
	}
	if hasControl(v) {
		return "", errFallback // not JSON: encoding/json reports it
	}
	if bytes.IndexByte(v, '\\') < 0 {
		if !utf8.Valid(v) {
			return "", errFallback
		}
		return string(v), nil
	}
	out := make([]byte, 0, len(v))
	for len(v) > 0 {
		i := bytes.IndexByte(v, '\\')
		if i < 0 {
			out = append(out, v...)
			break
		}
		out = append(out, v[:i]...)
		if i+1 >= len(v) {
			return "", errFallback
		}
		c := v[i+1]
		v = v[i+2:]
		switch c {
		case '"', '\\', '/':
			out = append(out, c)
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'u':
			r, n := hex4(v)
			if n == 0 {
				return "", errFallback
			}
			v = v[n:]
			if utf16.IsSurrogate(r) {
				r2, n2 := rune(-1), 0
				if len(v) >= 6 && v[0] == '\\' && v[1] == 'u' {
					r2, n2 = hex4(v[2:])
				}
				if d := utf16.DecodeRune(r, r2); n2 > 0 && d != utf8.RuneError {
					r = d
					v = v[2+n2:]
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", errFallback
		}
	}
	if !utf8.Valid(out) {
		return "", errFallback
	}
	return string(out), nil
}

func hex4(v []byte) (rune, int) {
	if len(v) < 4 {
		return 0, 0
	}
	n, err := strconv.ParseUint(string(v[:4]), 16, 32)
	if err != nil {
		return 0, 0
	}
	return rune(n), 4
}

func intOf(v []byte) (int64, error) {
	if string(v) == "null" {
		return 0, nil
	}
	// JSON's integers: ParseInt also takes "+1" and "01".
	d := bytes.TrimPrefix(v, []byte{'-'})
	if len(d) == 0 || d[0] == '+' || d[0] == '0' && len(d) > 1 {
		return 0, errFallback
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, errFallback
	}
	return n, nil
}

// appendString appends s as encoding/json writes it (HTML-safe).
func appendString(dst []byte, s string) []byte {
	return append(appendEscaped(append(dst, '"'), s), '"')
}

// appendEscaped appends the body of s's JSON string.
func appendEscaped(dst []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexd[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

func appendText(dst []byte, t Text) []byte {
	return append(append(append(dst, '"'), t...), '"')
}

// AppendJSON appends e as one JSONL line of format f (no newline): keys
// sorted, as encoding/json writes maps; texts copied as they are.
func (e *SFT) AppendJSON(dst []byte, f string) []byte {
	t := TagsOf(f)
	msg := func(dst []byte, role string, content Text, mask *bool) []byte {
		// Keys in sorted order, as encoding/json writes maps.
		ms := []member{
			{t.RoleTag, func(d []byte) []byte { return appendString(append(appendString(d, t.RoleTag), ':'), role) }},
			{t.ContentTag, func(d []byte) []byte { return appendText(append(appendString(d, t.ContentTag), ':'), content) }},
		}
		if mask != nil {
			ms = append(ms, member{"turn_mask", func(d []byte) []byte { return strconv.AppendBool(append(d, `"turn_mask":`...), *mask) }})
		}
		return writeObject(dst, ms)
	}
	messages := func(dst []byte) []byte {
		dst = appendString(dst, t.Messages)
		dst = append(dst, ':', '[')
		first := true
		if f == OpenAI && len(e.System) > 0 {
			dst = msg(dst, t.SystemTag, e.System, nil)
			first = false
		}
		for _, turn := range e.Turns {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = msg(dst, tagOf(t, turn.Role), turn.Text, turn.Mask)
		}
		return append(dst, ']')
	}
	ms := []member{
		{t.Messages, messages},
		{"instance_id", func(d []byte) []byte { return appendString(append(d, `"instance_id":`...), e.InstanceID) }},
		{"tools", func(d []byte) []byte { return appendString(append(d, `"tools":`...), e.Tools) }},
		{"turns", func(d []byte) []byte { return strconv.AppendInt(append(d, `"turns":`...), int64(e.NumTurns), 10) }},
	}
	if e.Resolved != nil {
		ms = append(ms, member{"resolved", func(d []byte) []byte { return strconv.AppendBool(append(d, `"resolved":`...), *e.Resolved) }})
	}
	if f == ShareGPT && len(e.System) > 0 {
		ms = append(ms, member{"system", func(d []byte) []byte { return appendText(append(d, `"system":`...), e.System) }})
	}
	return writeObject(dst, ms)
}

// member is one key of an object and how to write it.
type member struct {
	k string
	w func([]byte) []byte
}

// writeObject writes the members sorted by key, as encoding/json does
// for maps.
func writeObject(dst []byte, ms []member) []byte {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].k < ms[j-1].k; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
	dst = append(dst, '{')
	for i, m := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = m.w(dst)
	}
	return append(dst, '}')
}

// validBody tells whether b is a valid JSON string body that can be copied
// to the output as it is: no raw control characters, only JSON escapes,
// valid UTF-8 (encoding/json would replace bad bytes). It runs over most
// of every trajectory, so it jumps from backslash to backslash and looks
// for control characters eight bytes at a time.
func validBody(b []byte) bool {
	if hasControl(b) || !utf8.Valid(b) {
		return false
	}
	for i := 0; ; {
		k := bytes.IndexByte(b[i:], '\\')
		if k < 0 {
			return true
		}
		i += k + 1
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if _, n := hex4(b[i+1:]); n == 0 {
				return false
			}
			i += 5
		default:
			return false
		}
	}
}

// hasControl tells whether b holds a byte below 0x20.
func hasControl(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		// A byte below 0x20 (exact for thresholds up to 0x80).
		if (x-0x2020202020202020)&^x&0x8080808080808080 != 0 {
			return true
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return true
		}
	}
	return false
}

// validString returns the index just past the string starting at b[i]
// when it is one validBody accepts, finding its end and checking it in
// one pass, eight bytes at a time: most of a trajectory is such strings,
// and skipString then validBody would read each of them four times. ok
// false says: let skipString and validBody decide (and report).
func validString(b []byte, i int) (end int, ok bool) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	j := i + 1
	for {
		// Two words a round while neither holds anything special.
		for j+16 <= len(b) {
			x, y := binary.LittleEndian.Uint64(b[j:]), binary.LittleEndian.Uint64(b[j+8:])
			qx, ex, qy, ey := x^0x2222222222222222, x^0x5c5c5c5c5c5c5c5c, y^0x2222222222222222, y^0x5c5c5c5c5c5c5c5c
			t := ((qx-ones)&^qx | (ex-ones)&^ex | (x-0x2020202020202020)&^x | x |
				(qy-ones)&^qy | (ey-ones)&^ey | (y-0x2020202020202020)&^y | y) & highs
			if t != 0 {
				break
			}
			j += 16
		}
		for j+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[j:])
			q, e := x^0x2222222222222222, x^0x5c5c5c5c5c5c5c5c
			// A quote, a backslash, a control character or a byte of a
			// multi-byte character; the lowest one found is exact.
			t := ((q-ones)&^q | (e-ones)&^e | (x-0x2020202020202020)&^x | x) & highs
			if t != 0 {
				j += bits.TrailingZeros64(t) / 8
				break
			}
			j += 8
		}
		for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 && b[j] < utf8.RuneSelf {
			j++
		}
		if j >= len(b) {
			return 0, false
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c == '\\':
			if j+1 >= len(b) {
				return 0, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if _, n := hex4(b[j+2:]); n == 0 {
					return 0, false
				}
				j += 6
			default:
				return 0, false
			}
		case c < 0x20:
			return 0, false
		default:
			r, n := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && n == 1 {
				return 0, false
			}
			j += n
		}
	}
}
