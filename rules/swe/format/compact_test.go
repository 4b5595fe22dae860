package format

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

var compactSeeds = []string{
	``, ` `, `{}`, ` { } `, `[]`, `{"a":1}`, "{\n  \"command\": \"ls -la\",\n  \"path\": \"/x\"\n}",
	`{"a": [1, 2.5, -3e10, 0.0, 1E+2, true, false, null, "x"]}`, `{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`,
	`{"a":.5}`, `{"a":+1}`, `{"a":1,}`, `{,}`, `{"a" 1}`, `{"a":1 "b":2}`, `[1,,2]`, `{"a":tru}`, `{"a":nul}`,
	`{"a":"\"q\" \\ \/ \b\f\n\r\t \u00e9 \ud83d\ude00"}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"tab\there\"}",
	"{\"a\":\"\xff bad utf8\"}", `{"a":"unterminated}`, `{"a":{"b":{"c":[[[]]]}}}`, `"just a string"`, `12`,
	`{"a":1}x`, `{"a":1} `, `{"k\"ey":"v"}`, `{"a":"ends with backslash\\"}`, `{"a":"<&>"}`, "\u2028",
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 100) + strings.Repeat("]", 100),
}

// AppendCompact and ObjectJSON answer as encoding/json's Compact and
// Valid do, byte for byte.
func TestCompactAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range compactSeeds {
		checkCompact(t, s)
	}
}

func FuzzCompact(f *testing.F) {
	for _, s := range compactSeeds {
		f.Add(s)
	}
	f.Fuzz(checkCompact)
}

func checkCompact(t *testing.T, s string) {
	var want bytes.Buffer
	werr := json.Compact(&want, []byte(s))
	got, ok := AppendCompact([]byte("prefix"), s)
	if ok != (werr == nil) {
		t.Fatalf("%q: AppendCompact ok=%v, json.Compact error %v", s, ok, werr)
	}
	if ok && string(got) != "prefix"+want.String() {
		t.Fatalf("%q: compacted to %q, json.Compact gives %q", s, got, want.String())
	}
	if !ok && string(got) != "prefix" {
		t.Fatalf("%q: invalid input changed dst to %q", s, got)
	}
	trimmed := strings.TrimSpace(s)
	wantObj := strings.HasPrefix(trimmed, "{") && json.Valid([]byte(trimmed))
	if ObjectJSON(s) != wantObj {
		t.Fatalf("%q: ObjectJSON %v, want %v", s, !wantObj, wantObj)
	}
}
