package format

import (
	"bytes"
	"encoding/json"
	"strings"
	"unsafe"
)

// Tool-call arguments are JSON text inside a JSON string: masking checks
// that each is an object and writes it compacted into the SFT example.
// encoding/json's Valid and Compact run a byte-at-a-time state machine;
// compactor does both in one pass that jumps over strings with memchr.
// Where it says no (bad JSON, or JSON it is not sure of, such as invalid
// UTF-8 in a string), encoding/json decides, so results never differ.

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

type compactor struct {
	s     []byte
	i     int
	dst   []byte
	emit  bool
	depth int
}

// AppendCompact appends s compacted as json.Compact does and reports
// whether s is valid JSON (dst is returned as it was when it is not).
func AppendCompact(dst []byte, s string) ([]byte, bool) {
	c := compactor{s: view(s), dst: dst, emit: true}
	if c.value() && c.end() {
		return c.dst, true
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, c.s); err != nil {
		return dst, false
	}
	return append(dst, buf.Bytes()...), true
}

// ObjectJSON tells whether s is a JSON object (tool-call arguments must be).
func ObjectJSON(s string) bool {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "{") {
		return false
	}
	c := compactor{s: view(t)}
	if c.value() && c.end() {
		return true
	}
	return json.Valid(c.s)
}

// view is s as bytes, read only, without a copy.
func view(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (c *compactor) out(b ...byte) {
	if c.emit {
		c.dst = append(c.dst, b...)
	}
}

func (c *compactor) space() {
	for c.i < len(c.s) {
		switch c.s[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

func (c *compactor) end() bool {
	c.space()
	return c.i == len(c.s)
}

func (c *compactor) value() bool {
	c.space()
	if c.i >= len(c.s) {
		return false
	}
	switch ch := c.s[c.i]; {
	case ch == '{' || ch == '[':
		return c.container(ch)
	case ch == '"':
		return c.str()
	case ch == 't':
		return c.lit("true")
	case ch == 'f':
		return c.lit("false")
	case ch == 'n':
		return c.lit("null")
	case ch == '-' || ch >= '0' && ch <= '9':
		return c.number()
	}
	return false
}

// container reads an object or an array.
func (c *compactor) container(open byte) bool {
	closer := byte('}')
	if open == '[' {
		closer = ']'
	}
	if c.depth++; c.depth > maxDepth {
		return false
	}
	c.i++
	c.out(open)
	c.space()
	if c.i < len(c.s) && c.s[c.i] == closer {
		c.i++
		c.out(closer)
		c.depth--
		return true
	}
	for {
		if open == '{' {
			c.space()
			if c.i >= len(c.s) || c.s[c.i] != '"' || !c.str() {
				return false
			}
			c.space()
			if c.i >= len(c.s) || c.s[c.i] != ':' {
				return false
			}
			c.i++
			c.out(':')
		}
		if !c.value() {
			return false
		}
		c.space()
		if c.i >= len(c.s) {
			return false
		}
		switch c.s[c.i] {
		case ',':
			c.i++
			c.out(',')
		case closer:
			c.i++
			c.out(closer)
			c.depth--
			return true
		default:
			return false
		}
	}
}

// str reads a string; its body must be one validBody accepts.
func (c *compactor) str() bool {
	if j, ok := validString(c.s, c.i); ok {
		c.out(c.s[c.i:j]...)
		c.i = j
		return true
	}
	j, err := skipString(c.s, c.i)
	if err != nil || !validBody(c.s[c.i+1:j-1]) {
		return false
	}
	c.out(c.s[c.i:j]...)
	c.i = j
	return true
}

func (c *compactor) lit(w string) bool {
	if !bytes.HasPrefix(c.s[c.i:], []byte(w)) {
		return false
	}
	c.i += len(w)
	c.out([]byte(w)...)
	return true
}

// number reads -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (c *compactor) number() bool {
	s, i := c.s, c.i
	digits := func() bool {
		k := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > k
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	c.out(s[c.i:i]...)
	c.i = i
	return true
}
