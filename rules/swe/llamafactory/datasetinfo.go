package llamafactory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// dataset_info.json vocabulary, as LLaMA-Factory's data/README.md documents
// it (the SWE-Lego fork's copy is the same). om_hub_url is not in the README;
// LLaMA-Factory's dataset parser reads it and its own dataset_info.json uses it.
var (
	// EntryKeys are the keys of one dataset's description.
	EntryKeys = []string{
		"hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name", "file_name",
		"formatting", "ranking", "subset", "split", "folder", "num_samples", "columns", "tags",
	}
	// SourceKeys say where the data is; an entry needs at least one.
	SourceKeys = []string{"hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name", "file_name"}
	// ColumnNames are the keys of "columns".
	ColumnNames = []string{
		"prompt", "query", "response", "history", "messages", "system", "tools",
		"images", "videos", "audios", "chosen", "rejected", "kto_tag",
	}
	// TagNames are the keys of "tags" (sharegpt format only).
	TagNames = []string{"role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag"}
	// Formattings are the values of "formatting" both the SWE-Lego fork and
	// the README accept ("openai" is upstream-only and the fork has no
	// converter for it; the OpenAI message layout is "sharegpt" with tags).
	Formattings = []string{"alpaca", "sharegpt"}
)

var (
	alpacaOnlyColumns = []string{"prompt", "query", "response", "history"}
	sharegptOnly      = []string{"messages"}
	// LLaMA-Factory's defaults for the role values of the sharegpt tags.
	defaultRoleTags = map[string]string{
		"user_tag": "human", "assistant_tag": "gpt", "observation_tag": "observation",
		"function_tag": "function_call", "system_tag": "system",
	}
)

// CheckDatasetInfo parses a dataset_info.json and returns every problem
// found, each naming the dataset and the field: unknown keys, an entry
// that names no data (no file_name and no hub/script/cloud source), a
// formatting other than alpaca or sharegpt, unknown column or tag names,
// values of the wrong JSON type, columns or tags of one format used with
// the other, and sharegpt role tags that collide.
func CheckDatasetInfo(b []byte) error {
	entries, err := objectFields(b)
	if err != nil {
		return fmt.Errorf("dataset_info.json: %v", err)
	}
	if len(entries) == 0 {
		return errors.New("dataset_info.json: registers no dataset")
	}
	var errs []error
	for _, e := range entries {
		for _, p := range checkEntry(e.raw) {
			errs = append(errs, fmt.Errorf("dataset_info.json: dataset %q: %s", e.name, p))
		}
	}
	return errors.Join(errs...)
}

// DatasetNames returns the names dataset_info.json registers, in file order.
func DatasetNames(b []byte) ([]string, error) {
	entries, err := objectFields(b)
	if err != nil {
		return nil, fmt.Errorf("dataset_info.json: %v", err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.name
	}
	return names, nil
}

// CheckDatasets checks dataset_info.json and that it registers every name
// in names (what Train.Datasets will ask LLaMA-Factory to load).
func CheckDatasets(info []byte, names []string) error {
	if err := CheckDatasetInfo(info); err != nil {
		return err
	}
	have, _ := DatasetNames(info)
	var errs []error
	for _, n := range names {
		if !contains(have, n) {
			errs = append(errs, fmt.Errorf("dataset_info.json: dataset %q is not registered (registered: %s)", n, strings.Join(have, ", ")))
		}
	}
	return errors.Join(errs...)
}

func checkEntry(raw json.RawMessage) []string {
	fields, err := objectFields(raw)
	if err != nil {
		return []string{fmt.Sprintf("description: %v", err)}
	}
	var probs []string
	add := func(format string, a ...any) { probs = append(probs, fmt.Sprintf(format, a...)) }
	got := map[string]json.RawMessage{}
	for _, f := range fields {
		if !contains(EntryKeys, f.name) {
			add("unknown key %q (documented: %s)", f.name, strings.Join(EntryKeys, ", "))
			continue
		}
		got[f.name] = f.raw
	}

	hasSource := false
	for _, k := range SourceKeys {
		v, ok := got[k]
		if !ok {
			continue
		}
		hasSource = true
		s, err := jsonString(v)
		switch {
		case err != nil:
			add("%s: %v", k, err)
		case strings.TrimSpace(s) == "":
			add("%s is empty", k)
		case k == "file_name":
			if p := path.Clean(s); path.IsAbs(s) || p == ".." || strings.HasPrefix(p, "../") {
				add("file_name %q does not name a file inside dataset_dir", s)
			}
		}
	}
	if !hasSource {
		add("missing \"file_name\" (or one of %s)", strings.Join(SourceKeys[:len(SourceKeys)-1], ", "))
	}

	formatting := "alpaca"
	if v, ok := got["formatting"]; ok {
		s, err := jsonString(v)
		switch {
		case err != nil:
			add("formatting: %v", err)
		case !contains(Formattings, s):
			add("formatting %q is not one of %s", s, strings.Join(Formattings, ", "))
		default:
			formatting = s
		}
	}
	if v, ok := got["ranking"]; ok {
		var x bool
		if isNull(v) || json.Unmarshal(v, &x) != nil {
			add("ranking: want true or false, got %s", clip(v))
		}
	}
	if v, ok := got["split"]; ok {
		if s, err := jsonString(v); err != nil {
			add("split: %v", err)
		} else if s == "" {
			add("split is empty")
		}
	}
	for _, k := range []string{"subset", "folder"} {
		if v, ok := got[k]; ok && !isNull(v) {
			if _, err := jsonString(v); err != nil {
				add("%s: %v", k, err)
			}
		}
	}
	if v, ok := got["num_samples"]; ok && !isNull(v) {
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64); err != nil || n < 1 {
			add("num_samples: want a positive integer, got %s", clip(v))
		}
	}

	if v, ok := got["columns"]; ok {
		cols, err := stringMap(v)
		if err != nil {
			add("columns: %v", err)
		}
		for _, c := range cols {
			switch {
			case !contains(ColumnNames, c.name):
				add("columns: unknown column %q (documented: %s)", c.name, strings.Join(ColumnNames, ", "))
			case c.err != nil:
				add("columns.%s: %v", c.name, c.err)
			case c.val == "":
				add("columns.%s is empty", c.name)
			case formatting == "sharegpt" && contains(alpacaOnlyColumns, c.name):
				add("columns.%s is an alpaca column; formatting is sharegpt", c.name)
			case formatting == "alpaca" && contains(sharegptOnly, c.name):
				add("columns.%s is a sharegpt column; formatting is alpaca (set \"formatting\": \"sharegpt\")", c.name)
			}
		}
	}
	if v, ok := got["tags"]; ok {
		if formatting != "sharegpt" {
			add("tags are read for formatting sharegpt only; formatting is %s", formatting)
		}
		tags, err := stringMap(v)
		if err != nil {
			add("tags: %v", err)
		}
		roles := map[string]string{}
		for k, d := range defaultRoleTags {
			roles[k] = d
		}
		var role, content string = "from", "value"
		for _, t := range tags {
			switch {
			case !contains(TagNames, t.name):
				add("tags: unknown tag %q (documented: %s)", t.name, strings.Join(TagNames, ", "))
				continue
			case t.err != nil:
				add("tags.%s: %v", t.name, t.err)
				continue
			case t.val == "":
				add("tags.%s is empty", t.name)
				continue
			}
			switch t.name {
			case "role_tag":
				role = t.val
			case "content_tag":
				content = t.val
			default:
				roles[t.name] = t.val
			}
		}
		if role == content {
			add("tags: role_tag and content_tag are both %q", role)
		}
		byValue := map[string]string{}
		for _, k := range TagNames[2:] {
			v := roles[k]
			if other, dup := byValue[v]; dup {
				add("tags: %s and %s are both %q", other, k, v)
				continue
			}
			byValue[v] = k
		}
	}
	return probs
}

type field struct {
	name string
	raw  json.RawMessage
}

// objectFields reads a JSON object's members in order, refusing duplicate
// names (Python's json keeps the last silently) and trailing data.
func objectFields(b []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("want a JSON object, got %s", clip(b))
	}
	var out []field
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		name := tok.(string) // object keys are strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%q: not JSON: %v", name, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("%q appears twice", name)
		}
		seen[name] = true
		out = append(out, field{name, raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return out, nil
}

type strField struct {
	name, val string
	err       error
}

func stringMap(raw json.RawMessage) ([]strField, error) {
	fields, err := objectFields(raw)
	if err != nil {
		return nil, err
	}
	out := make([]strField, len(fields))
	for i, f := range fields {
		s, err := jsonString(f.raw)
		out[i] = strField{f.name, s, err}
	}
	return out, nil
}

func jsonString(raw json.RawMessage) (string, error) {
	var s string
	if isNull(raw) || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("want a string, got %s", clip(raw))
	}
	return s, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func clip(b []byte) string {
	s := string(bytes.TrimSpace(b))
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}
