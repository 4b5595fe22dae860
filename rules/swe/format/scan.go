package format

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"unsafe"
)

// A small JSON scanner for the hot paths: it finds the members of an
// object and the elements of an array as raw byte slices, skipping strings
// with memchr, so a step that needs a few fields of a 60 KB trajectory
// does not decode (or even validate character by character) the rest.
// Whatever it returns as raw is decoded with encoding/json when needed.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

var errTruncated = fmt.Errorf("unexpected end of JSON")

// skipString returns the index just past the string starting at b[i].
// Most strings of a trajectory are keys and short values: the first bytes
// are looked at eight at a time for a quote or a backslash, and only a
// longer string goes on with memchr.
func skipString(b []byte, i int) (int, error) {
	j := i + 1
	for end := min(j+32, len(b)); j+8 <= end; {
		x := binary.LittleEndian.Uint64(b[j:])
		q, e := x^0x2222222222222222, x^0x5c5c5c5c5c5c5c5c
		// The lowest zero byte of q or e is found exactly (borrows only
		// spoil bytes above it).
		t := ((q-0x0101010101010101)&^q | (e-0x0101010101010101)&^e) & 0x8080808080808080
		if t == 0 {
			j += 8
			continue
		}
		j += bits.TrailingZeros64(t) / 8
		if b[j] == '"' {
			return j + 1, nil
		}
		j += 2 // an escape: its next byte is never the end
	}
	if j > len(b) {
		return 0, errTruncated
	}
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, errTruncated
		}
		j += k
		n := 0 // backslashes before the quote: odd means escaped
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		j++
		if n%2 == 0 {
			return j, nil
		}
	}
}

// skipValue returns the index just past the value starting at or after i.
func skipValue(b []byte, i int) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) {
		return 0, errTruncated
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch c := b[i]; c {
			case '"':
				j, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = j
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errTruncated
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if lit := string(b[i:j]); lit != "true" && lit != "false" && lit != "null" {
			if _, err := strconv.ParseFloat(lit, 64); err != nil {
				if j == len(b) {
					// It may go on past b (a stream's buffer).
					return 0, fmt.Errorf("%w: invalid literal %q at byte %d", errTruncated, clip(lit), i)
				}
				return 0, fmt.Errorf("invalid literal %q at byte %d", clip(lit), i)
			}
		}
		return j, nil
	}
}

// Members calls fn with the raw key (unquoted only when it has no escapes)
// and raw value of each member of the object in b.
func Members(b []byte, fn func(key string, val []byte) error) error {
	_, err := members(b, fn)
	return err
}

// members is Members, returning the index just past the object.
func members(b []byte, fn func(key string, val []byte) error) (int, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, fmt.Errorf("want a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return 0, fmt.Errorf("want a member name at byte %d", i)
		}
		end, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		key := string(b[i+1 : end-1])
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, fmt.Errorf("want ':' at byte %d", i)
		}
		vs := skipSpace(b, i+1)
		ve, err := skipValue(b, vs)
		if err != nil {
			return 0, err
		}
		if err := fn(key, b[vs:ve]); err != nil {
			return 0, err
		}
		i = skipSpace(b, ve)
		if i >= len(b) {
			return 0, errTruncated
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, fmt.Errorf("want ',' or '}' at byte %d", i)
		}
		i++
	}
}

// Elements calls fn with each raw element of the array in b.
func Elements(b []byte, fn func(val []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return fmt.Errorf("want a JSON array")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for {
		vs := skipSpace(b, i)
		ve, err := skipValue(b, vs)
		if err != nil {
			return err
		}
		if err := fn(b[vs:ve]); err != nil {
			return err
		}
		i = skipSpace(b, ve)
		if i >= len(b) {
			return errTruncated
		}
		if b[i] == ']' {
			return nil
		}
		if b[i] != ',' {
			return fmt.Errorf("want ',' or ']' at byte %d", i)
		}
		i++
	}
}

// kind names a raw JSON value's type as encoding/json does in errors.
func kind(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// rawString decodes a raw JSON string (null = "").
func rawString(v []byte) (string, bool) {
	if len(v) == 4 && string(v) == "null" {
		return "", true
	}
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if s, ok := common(v[1 : len(v)-1]); ok {
		return s, true
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	return s, json.Unmarshal(v, &s) == nil
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

// The decoder walks a record once: objectP and arrayP hand each value to
// fn as the rest of the buffer from the value's first byte, and fn says
// how many bytes the value took, so no level looks for a value's end
// before the next level parses it. Errors are those of members and
// Elements, which found each value's end first: a value they would have
// refused to skip (a bad literal, a string or bracket never closed)
// fails with the scanner's error, even when fn found something else
// wrong inside it first (skipValue runs again only then).

// objectP walks the object at b[0]; b may go on past it. It returns the
// object's length.
func objectP(b []byte, fn func(key string, v []byte) (int, error)) (int, error) {
	if len(b) == 0 || b[0] != '{' {
		return 0, fmt.Errorf("want a JSON object")
	}
	i := skipSpace(b, 1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return 0, fmt.Errorf("want a member name at byte %d", i)
		}
		end, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		key := unsafe.String(&b[i], end-i)[1 : end-i-1] // fields that name it are copied (rdec.bad)
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, fmt.Errorf("want ':' at byte %d", i)
		}
		vs := skipSpace(b, i+1)
		n, err := valueP(b, vs, func(v []byte) (int, error) { return fn(key, v) })
		if err != nil {
			return 0, err
		}
		i = skipSpace(b, vs+n)
		if i >= len(b) {
			return 0, errTruncated
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, fmt.Errorf("want ',' or '}' at byte %d", i)
		}
		i++
	}
}

// arrayP walks the array at b[0], as objectP does an object.
func arrayP(b []byte, fn func(v []byte) (int, error)) (int, error) {
	if len(b) == 0 || b[0] != '[' {
		return 0, fmt.Errorf("want a JSON array")
	}
	i := skipSpace(b, 1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		vs := skipSpace(b, i)
		n, err := valueP(b, vs, fn)
		if err != nil {
			return 0, err
		}
		i = skipSpace(b, vs+n)
		if i >= len(b) {
			return 0, errTruncated
		}
		if b[i] == ']' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, fmt.Errorf("want ',' or ']' at byte %d", i)
		}
		i++
	}
}

// valueP hands the value at b[vs] to fn. A literal is checked by
// skipValue first (it is short); a string or container is checked by
// skipValue only when fn fails, as skipValue would have failed first.
func valueP(b []byte, vs int, fn func(v []byte) (int, error)) (int, error) {
	if vs >= len(b) {
		return 0, errTruncated
	}
	if c := b[vs]; c != '{' && c != '[' && c != '"' {
		if _, err := skipValue(b, vs); err != nil {
			return 0, err
		}
	}
	n, err := fn(b[vs:])
	if err != nil {
		if _, serr := skipValue(b, vs); serr != nil {
			return 0, serr
		}
		return 0, err
	}
	return n, nil
}

// litLen is the length of the literal at v[0], as skipValue finds it.
func litLen(v []byte) int {
	j := 0
	for j < len(v) && v[j] != ',' && v[j] != '}' && v[j] != ']' && v[j] != ' ' && v[j] != '\n' && v[j] != '\t' && v[j] != '\r' {
		j++
	}
	return j
}

// scalar is the string or literal at v[0], or v itself for a container
// (whose handlers look at its first byte only, to refuse it).
func scalar(v []byte) ([]byte, error) {
	switch v[0] {
	case '"':
		n, err := skipString(v, 0)
		if err != nil {
			return nil, err
		}
		return v[:n], nil
	case '{', '[':
		return v, nil
	}
	return v[:litLen(v)], nil
}
