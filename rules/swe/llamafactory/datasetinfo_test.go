package llamafactory

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/format"
)

// documentedGroups reads dataset_info_keys.txt: "## group" then names.
func documentedGroups(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("testdata/dataset_info_keys.txt")
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string][]string{}
	group := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "## "):
			group = strings.TrimPrefix(line, "## ")
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			groups[group] = append(groups[group], line)
		}
	}
	return groups
}

func TestVocabularyIsDocumented(t *testing.T) {
	g := documentedGroups(t)
	for _, c := range []struct {
		group string
		ours  []string
	}{
		{"entry", EntryKeys}, {"columns", ColumnNames}, {"tags", TagNames}, {"formatting", Formattings},
	} {
		ours, doc := append([]string(nil), c.ours...), append([]string(nil), g[c.group]...)
		sort.Strings(ours)
		sort.Strings(doc)
		if !reflect.DeepEqual(ours, doc) {
			t.Errorf("%s: package has %v, documented %v", c.group, c.ours, g[c.group])
		}
	}
	for _, k := range SourceKeys {
		if !contains(EntryKeys, k) {
			t.Errorf("source key %s is not an entry key", k)
		}
	}
}

// What lego's masked_dataset rule registers, for both SFT formats.
func TestAcceptsLegoInfo(t *testing.T) {
	for _, f := range format.Formats {
		b, err := json.MarshalIndent(map[string]format.DatasetInfo{"x": format.InfoFor("data.jsonl", f)}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckDatasetInfo(b); err != nil {
			t.Errorf("format %s: %v\n%s", f, err, b)
		}
		if err := CheckDatasets(b, []string{"x"}); err != nil {
			t.Errorf("format %s: CheckDatasets: %v", f, err)
		}
	}
}

// LLaMA-Factory's README examples and entries shaped like its own
// dataset_info.json (hub mirrors, subsets, scripts, cloud files), plus the
// SWE-Lego registration.
func TestAcceptsDocumentedExamples(t *testing.T) {
	b, err := os.ReadFile("testdata/documented_dataset_info.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckDatasetInfo(b); err != nil {
		t.Fatal(err)
	}
	names, err := DatasetNames(b)
	if err != nil || len(names) != 16 || names[0] != "readme_alpaca_sft" || names[15] != "cloud" {
		t.Fatalf("DatasetNames = %v, %v", names, err)
	}
}

func TestRejects(t *testing.T) {
	for _, c := range []struct {
		name, json string
		want       []string // substrings of the error
	}{
		{"unknown key", `{"d": {"file_name": "a.json", "fromatting": "sharegpt"}}`,
			[]string{`dataset "d"`, `unknown key "fromatting"`}},
		{"missing file_name", `{"d": {"formatting": "sharegpt"}}`,
			[]string{`dataset "d"`, `missing "file_name"`}},
		{"empty file_name", `{"d": {"file_name": ""}}`, []string{`dataset "d"`, "file_name is empty"}},
		{"file_name number", `{"d": {"file_name": 3}}`, []string{`dataset "d"`, "file_name: want a string"}},
		{"file_name absolute", `{"d": {"file_name": "/etc/data.json"}}`, []string{`dataset "d"`, "file_name"}},
		{"file_name escapes", `{"d": {"file_name": "a/../../x.json"}}`, []string{`dataset "d"`, "file_name"}},
		{"hub url null", `{"d": {"hf_hub_url": null}}`, []string{`dataset "d"`, "hf_hub_url: want a string"}},
		{"formatting openai", `{"d": {"file_name": "a.json", "formatting": "openai"}}`,
			[]string{`dataset "d"`, `formatting "openai"`}},
		{"formatting number", `{"d": {"file_name": "a.json", "formatting": 1}}`,
			[]string{`dataset "d"`, "formatting: want a string"}},
		{"ranking string", `{"d": {"file_name": "a.json", "ranking": "true"}}`,
			[]string{`dataset "d"`, "ranking"}},
		{"num_samples fraction", `{"d": {"file_name": "a.json", "num_samples": 1.5}}`,
			[]string{`dataset "d"`, "num_samples"}},
		{"num_samples zero", `{"d": {"file_name": "a.json", "num_samples": 0}}`,
			[]string{`dataset "d"`, "num_samples"}},
		{"split empty", `{"d": {"file_name": "a.json", "split": ""}}`, []string{`dataset "d"`, "split"}},
		{"subset object", `{"d": {"file_name": "a.json", "subset": {}}}`, []string{`dataset "d"`, "subset"}},
		{"unknown column", `{"d": {"file_name": "a.json", "formatting": "sharegpt", "columns": {"messages": "m", "turn_mask": "turn_mask"}}}`,
			[]string{`dataset "d"`, `unknown column "turn_mask"`}},
		{"column not string", `{"d": {"file_name": "a.json", "formatting": "sharegpt", "columns": {"messages": ["m"]}}}`,
			[]string{`dataset "d"`, "columns.messages"}},
		{"columns not object", `{"d": {"file_name": "a.json", "columns": ["prompt"]}}`,
			[]string{`dataset "d"`, "columns"}},
		{"unknown tag", `{"d": {"file_name": "a.json", "formatting": "sharegpt", "tags": {"role_tag": "role", "tool_tag": "tool"}}}`,
			[]string{`dataset "d"`, `unknown tag "tool_tag"`}},
		{"tags on alpaca", `{"d": {"file_name": "a.json", "tags": {"role_tag": "role"}}}`,
			[]string{`dataset "d"`, "tags", "sharegpt"}},
		{"messages on alpaca", `{"d": {"file_name": "a.json", "columns": {"messages": "messages"}}}`,
			[]string{`dataset "d"`, "columns.messages"}},
		{"prompt on sharegpt", `{"d": {"file_name": "a.json", "formatting": "sharegpt", "columns": {"prompt": "instruction"}}}`,
			[]string{`dataset "d"`, "columns.prompt"}},
		{"role values collide", `{"d": {"file_name": "a.json", "formatting": "sharegpt", "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "observation_tag": "user"}}}`,
			[]string{`dataset "d"`, "user_tag and observation_tag"}},
		{"role equals content", `{"d": {"file_name": "a.json", "formatting": "sharegpt", "tags": {"role_tag": "x", "content_tag": "x"}}}`,
			[]string{`dataset "d"`, "role_tag and content_tag"}},
		{"entry not object", `{"d": "a.json"}`, []string{`dataset "d"`}},
		{"duplicate dataset", `{"d": {"file_name": "a.json"}, "d": {"file_name": "b.json"}}`, []string{`"d" appears twice`}},
		{"duplicate key", `{"d": {"file_name": "a.json", "file_name": "b.json"}}`, []string{`dataset "d"`, `"file_name" appears twice`}},
		{"not an object", `[{"file_name": "a.json"}]`, []string{"want a JSON object"}},
		{"empty", `{}`, []string{"registers no dataset"}},
		{"not JSON", `{"d": `, []string{"not JSON"}},
		{"trailing data", `{"d": {"file_name": "a.json"}} {}`, []string{"after the JSON object"}},
	} {
		err := CheckDatasetInfo([]byte(c.json))
		if err == nil {
			t.Errorf("%s: accepted %s", c.name, c.json)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
	}
}

// Every problem is reported, each with its dataset.
func TestReportsAllProblems(t *testing.T) {
	err := CheckDatasetInfo([]byte(`{
		"ok": {"file_name": "ok.json"},
		"a": {"file_name": "a.json", "bogus": 1},
		"b": {"formatting": "xml"}
	}`))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, w := range []string{`dataset "a": unknown key "bogus"`, `dataset "b": missing "file_name"`, `dataset "b": formatting "xml"`} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, `"ok"`) {
		t.Errorf("error names the valid dataset:\n%s", msg)
	}
}

func TestCheckDatasets(t *testing.T) {
	info := []byte(`{"real": {"file_name": "real.jsonl"}, "synthetic": {"file_name": "synthetic.jsonl"}}`)
	if err := CheckDatasets(info, []string{"real", "synthetic"}); err != nil {
		t.Fatal(err)
	}
	err := CheckDatasets(info, []string{"real", "stage2"})
	if err == nil || !strings.Contains(err.Error(), `dataset "stage2" is not registered`) {
		t.Fatalf("err = %v", err)
	}
}
