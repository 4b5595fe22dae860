package llamafactory

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A reader for the YAML subset YAML() writes ("key: scalar" lines,
// comments, blank lines), resolving scalars as YAML 1.1 does (PyYAML, and
// OmegaConf, which LLaMA-Factory loads configs with): booleans, null,
// integers, floats (a '.' is required; an exponent needs a sign), strings
// plain or double-quoted.

type yamlKV struct {
	key string
	val any // bool, nil, int64, float64, string
}

var (
	yamlInt11   = regexp.MustCompile(`^[-+]?(0|[1-9][0-9_]*)$`)
	yamlFloat11 = regexp.MustCompile(`^[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?$`)
	yamlKey     = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
)

func parseYAML(b []byte) ([]yamlKV, error) {
	var out []yamlKV
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok || !yamlKey.MatchString(k) {
			return nil, fmt.Errorf("line %d: not \"key: value\": %q", n, line)
		}
		if seen[k] {
			return nil, fmt.Errorf("line %d: key %q repeated", n, k)
		}
		seen[k] = true
		val, err := yamlScalar(v)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %v", n, k, err)
		}
		out = append(out, yamlKV{k, val})
	}
	return out, sc.Err()
}

func yamlScalar(s string) (any, error) {
	if strings.HasPrefix(s, `"`) {
		if len(s) < 2 || !strings.HasSuffix(s, `"`) {
			return nil, fmt.Errorf("unterminated quoted string %q", s)
		}
		var b strings.Builder
		body := s[1 : len(s)-1]
		for i := 0; i < len(body); i++ {
			c := body[i]
			switch {
			case c == '\\' && i+1 < len(body) && (body[i+1] == '"' || body[i+1] == '\\'):
				b.WriteByte(body[i+1])
				i++
			case c == '\\' || c == '"':
				return nil, fmt.Errorf("escape or quote this reader does not take in %q", s)
			default:
				b.WriteByte(c)
			}
		}
		return b.String(), nil
	}
	if strings.ContainsAny(s, "#\"'{}[]&*!|>%`") || strings.Contains(s, ": ") || strings.HasSuffix(s, ":") || s != strings.TrimSpace(s) {
		return nil, fmt.Errorf("plain scalar %q needs quoting", s)
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on", "y":
		if s != "true" {
			return nil, fmt.Errorf("%q is a YAML 1.1 boolean; write true", s)
		}
		return true, nil
	case "false", "no", "off", "n":
		if s != "false" {
			return nil, fmt.Errorf("%q is a YAML 1.1 boolean; write false", s)
		}
		return false, nil
	case "null", "~", "":
		return nil, nil
	}
	if yamlInt11.MatchString(s) {
		return strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	}
	if yamlFloat11.MatchString(s) {
		return strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	}
	return s, nil
}

func yamlMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	kvs, err := parseYAML(b)
	if err != nil {
		t.Fatalf("generated YAML does not parse: %v\n%s", err, b)
	}
	m := map[string]any{}
	for _, kv := range kvs {
		m[kv.key] = kv.val
	}
	return m
}

// keyFile reads "## source ..." groups of names (documented_keys*.txt).
func keyFile(t *testing.T, name string) map[string]string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	source := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "## source "):
			source = strings.TrimPrefix(line, "## source ")
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			if source == "" {
				t.Fatalf("%s: key %q before any source line", name, line)
			}
			if !yamlKey.MatchString(line) {
				t.Fatalf("%s: %q is not a key name", name, line)
			}
			if _, dup := keys[line]; !dup {
				keys[line] = source
			}
		}
	}
	if len(keys) < 100 {
		t.Fatalf("%s: only %d keys", name, len(keys))
	}
	return keys
}

// pairFile reads "key = JSON value" lines (the authors' config, ds_z3).
func pairFile(t *testing.T, name string) ([]string, map[string]string) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			t.Fatalf("%s: bad line %q", name, line)
		}
		order = append(order, k)
		m[k] = v
	}
	return order, m
}

// valueFile reads "key: v1 v2 ..." lines (documented_values.txt).
func valueFile(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("testdata/documented_values.txt")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("documented_values.txt: bad line %q", line)
		}
		m[k] = strings.Fields(v)
	}
	return m
}

func TestYAMLReader(t *testing.T) {
	for s, want := range map[string]any{
		"true": true, "false": false, "null": nil, "8": int64(8), "131072": int64(131072),
		"1.0e-4": 1e-4, "4.0": 4.0, "0.1": 0.1, "1e-4": "1e-4", "cosine": "cosine",
		`"a b"`: "a b", `"q\"x"`: `q"x`, `"yes"`: "yes", "Qwen/Qwen3-8B": "Qwen/Qwen3-8B",
	} {
		got, err := yamlScalar(s)
		if err != nil || got != want {
			t.Errorf("yamlScalar(%q) = %#v, %v; want %#v", s, got, err, want)
		}
	}
	for _, s := range []string{"yes", "Off", "a: b", "x #c", `"open`} {
		if _, err := yamlScalar(s); err == nil {
			t.Errorf("yamlScalar(%q): no error", s)
		}
	}
}
