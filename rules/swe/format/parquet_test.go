package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
)

// readParquet returns the rows ParquetRows gives for the file at p,
// checking they come numbered in order.
func readParquet(t testing.TB, p string) []string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	err = ParquetRows(f, st.Size(), func(row int, rec []byte) error {
		if row != len(rows) {
			return fmt.Errorf("row %d after %d rows", row, len(rows))
		}
		rows = append(rows, string(rec))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func rowGroups(t *testing.T, p string) int {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return len(pf.RowGroups())
}

func TestParquetRoundTrip(t *testing.T) {
	records := []string{
		`{"id":1,"name":"a<b>&\"q\"\n\t\u2028é😀\u0001","score":1.5,"ok":true,` +
			`"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"there"}]},` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","function":{"name":"ls","arguments":"{}"}}]}],` +
			`"tags":["x",null,"y"],"meta":{"k":"v"}}`,
		`{"id":2,"name":null,"messages":[],"tags":null,"score":2}`,
		`{"id":-9223372036854775808,"messages":[null,{"role":"tool"}],"tags":[],"meta":{}}`,
		`{}`,
		`{"score":1e21,"ok":false,"name":"","tags":[null],"messages":[{"content":[],"tool_calls":[null]}],"score2":1e-7}`,
	}
	// Schema order is the order keys are first seen; a key a record lacks
	// comes back null, at every depth.
	want := []string{
		`{"id":1,"name":"a\u003cb\u003e\u0026\"q\"\n\t\u2028é😀\u0001","score":1.5,"ok":true,` +
			`"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"there"}],"tool_calls":null},` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","function":{"name":"ls","arguments":"{}"}}]}],` +
			`"tags":["x",null,"y"],"meta":{"k":"v"},"score2":null}`,
		`{"id":2,"name":null,"score":2,"ok":null,"messages":[],"tags":null,"meta":null,"score2":null}`,
		`{"id":-9223372036854775808,"name":null,"score":null,"ok":null,` +
			`"messages":[null,{"role":"tool","content":null,"tool_calls":null}],"tags":[],"meta":{"k":null},"score2":null}`,
		`{"id":null,"name":null,"score":null,"ok":null,"messages":null,"tags":null,"meta":null,"score2":null}`,
		`{"id":null,"name":"","score":1e+21,"ok":false,` +
			`"messages":[{"role":null,"content":[],"tool_calls":[null]}],"tags":[null],"meta":null,"score2":1e-7}`,
	}
	var recs [][]byte
	for _, r := range records {
		recs = append(recs, []byte(r))
	}
	p := filepath.Join(t.TempDir(), "r.parquet")
	if err := WriteParquet(p, recs, 2); err != nil {
		t.Fatal(err)
	}
	if n := rowGroups(t, p); n != 3 {
		t.Errorf("%d row groups, want 3", n)
	}
	got := readParquet(t, p)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d:\n got %s\nwant %s", i, got[i], want[i])
		}
		// The bytes are what encoding/json would write for the same value.
		var v any
		if err := json.Unmarshal([]byte(got[i]), &v); err != nil {
			t.Errorf("row %d: %v", i, err)
		}
	}
}

// equalNullFilled reports whether got is want with null for keys want
// lacks: what a round trip through a Parquet schema inferred from many
// records gives.
func equalNullFilled(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, gv := range g {
			wv, ok := w[k]
			if !ok && gv != nil || ok && !equalNullFilled(wv, gv) {
				return false
			}
		}
		for k := range w {
			if _, ok := g[k]; !ok {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !equalNullFilled(w[i], g[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, got)
	}
}

func TestParquetRoundTripTrajectories(t *testing.T) {
	var buf bytes.Buffer
	if err := Generate(&buf, 40, 3); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	p := filepath.Join(t.TempDir(), "t.parquet")
	if err := WriteParquet(p, lines, 7); err != nil {
		t.Fatal(err)
	}
	if n := rowGroups(t, p); n != 6 {
		t.Errorf("%d row groups, want 6", n)
	}
	got := readParquet(t, p)
	if len(got) != len(lines) {
		t.Fatalf("%d rows, want %d", len(got), len(lines))
	}
	for i := range lines {
		var w, g any
		if err := json.Unmarshal(lines[i], &w); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(got[i]), &g); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if !equalNullFilled(w, g) {
			t.Fatalf("row %d differs:\n got %.600s\nwant %.600s", i, got[i], lines[i])
		}
		// Tool results carry tool_call_id, assistant turns tool_calls: each
		// message has the union of the keys, the ones it lacks null.
		var tr struct {
			Messages []map[string]any `json:"messages"`
		}
		json.Unmarshal([]byte(got[i]), &tr)
		for _, m := range tr.Messages {
			if _, ok := m["tool_call_id"]; !ok {
				t.Fatalf("row %d: a message without tool_call_id: %v", i, m)
			}
		}
	}
}

func TestWriteParquetConflict(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.parquet")
	err := WriteParquet(p, [][]byte{
		[]byte(`{"messages":[{"content":"a"}]}`),
		[]byte(`{"messages":[{"content":[{"text":"b"}]}]}`),
	}, 10)
	if err == nil || !strings.Contains(err.Error(), "record 2") || !strings.Contains(err.Error(), "messages[].content") {
		t.Fatalf("err = %v, want one naming record 2 and messages[].content", err)
	}
	if _, serr := os.Stat(p); serr == nil {
		t.Errorf("%s written despite %v", p, err)
	}
	// Integers and fractions mix into DOUBLE.
	if err := WriteParquet(p, [][]byte{[]byte(`{"x":1}`), []byte(`{"x":0.5}`)}, 10); err != nil {
		t.Fatal(err)
	}
	if got := readParquet(t, p); !reflect.DeepEqual(got, []string{`{"x":1}`, `{"x":0.5}`}) {
		t.Errorf("got %q", got)
	}
}

// The layout pyarrow writes, produced here by parquet-go from tagged
// structs rather than by WriteParquet.
type pyFunction struct {
	Name      *string `parquet:"name,optional"`
	Arguments *string `parquet:"arguments,optional"`
}

type pyToolCall struct {
	ID       *string     `parquet:"id,optional"`
	Type     *string     `parquet:"type,optional,dict"`
	Function *pyFunction `parquet:"function,optional"`
}

type pyMessage struct {
	Role      *string       `parquet:"role,optional,dict"`
	Content   *string       `parquet:"content,optional,zstd"`
	ToolCalls []*pyToolCall `parquet:"tool_calls,optional,list" parquet-element:",optional"`
}

type pyStep struct {
	N int64  `parquet:"n"`
	S string `parquet:"s"`
}

type pyRow struct {
	InstanceID *string           `parquet:"instance_id,optional,dict,snappy"`
	Turns      *int64            `parquet:"turns,optional"`
	Reward     *float64          `parquet:"reward,optional"`
	Resolved   *bool             `parquet:"resolved,optional"`
	Created    *time.Time        `parquet:"created,optional,timestamp(microsecond)"`
	Messages   []*pyMessage      `parquet:"messages,optional,list" parquet-element:",optional"`
	Meta       map[string]string `parquet:"meta,optional"`
	Counts     map[int32]int64   `parquet:"counts"`
	Tags       []string          `parquet:"tags"`  // a bare repeated field: legacy two-level list
	Steps      []pyStep          `parquet:"steps"` // a repeated group
	Ratio      float32           `parquet:"ratio"`
	U          uint32            `parquet:"u"`
	Day        int32             `parquet:"day,date"`
	Int96Time  deprecated.Int96  `parquet:"int96_time"` // pyarrow's use_deprecated_int96_timestamps
	UUID       [16]byte          `parquet:"uuid,uuid"`
	Price      int64             `parquet:"price,decimal(2:10)"`
}

func ptr[T any](v T) *T { return &v }

func TestParquetRowsPyarrowLayout(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	// Impala's INT96: nanoseconds of the day, then the Julian day number.
	nanos := uint64(at.Sub(at.Truncate(24 * time.Hour)))
	i96 := deprecated.Int96{uint32(nanos), uint32(nanos >> 32), uint32(at.Unix()/86400 + 2440588)}
	uuid := [16]byte{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00}
	rows := []pyRow{
		{
			InstanceID: ptr("django__django-1"), Turns: ptr(int64(3)), Reward: ptr(0.25), Resolved: ptr(true), Created: &at,
			Messages: []*pyMessage{
				{Role: ptr("user"), Content: ptr("fix <it> \"now\"")},
				nil,
				{Role: ptr("assistant"), ToolCalls: []*pyToolCall{
					{ID: ptr("c1"), Type: ptr("function"), Function: &pyFunction{Name: ptr("execute_bash"), Arguments: ptr(`{"command":"ls"}`)}},
					nil,
					{ID: ptr("c2")},
				}},
			},
			Meta: map[string]string{"k": "v"}, Counts: map[int32]int64{7: 1}, Tags: []string{"a", "b"},
			Steps: []pyStep{{1, "x"}, {2, "y"}}, Ratio: 0.5, U: 4000000000, Day: 19000,
			Int96Time: i96, UUID: uuid, Price: -12345,
		},
		{Messages: []*pyMessage{}, Tags: nil, Ratio: -1.25e-7, Int96Time: i96},
		{InstanceID: ptr("é"), Messages: []*pyMessage{{ToolCalls: []*pyToolCall{}}}, Meta: map[string]string{}, Int96Time: i96, Price: 5},
	}
	want := []string{
		`{"instance_id":"django__django-1","turns":3,"reward":0.25,"resolved":true,"created":"2024-05-06T07:08:09.123456Z",` +
			`"messages":[{"role":"user","content":"fix \u003cit\u003e \"now\"","tool_calls":null},null,` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"execute_bash","arguments":"{\"command\":\"ls\"}"}},` +
			`null,{"id":"c2","type":null,"function":null}]}],` +
			`"meta":{"k":"v"},"counts":{"7":1},"tags":["a","b"],"steps":[{"n":1,"s":"x"},{"n":2,"s":"y"}],"ratio":0.5,"u":4000000000,"day":"2022-01-08",` +
			`"int96_time":"2024-05-06T07:08:09.123456Z","uuid":"123e4567-e89b-12d3-a456-426614174000","price":-123.45}`,
		`{"instance_id":null,"turns":null,"reward":null,"resolved":null,"created":null,"messages":[],` +
			`"meta":null,"counts":{},"tags":[],"steps":[],"ratio":-1.25e-7,"u":0,"day":"1970-01-01",` +
			`"int96_time":"2024-05-06T07:08:09.123456Z","uuid":"00000000-0000-0000-0000-000000000000","price":0.00}`,
		`{"instance_id":"é","turns":null,"reward":null,"resolved":null,"created":null,` +
			`"messages":[{"role":null,"content":null,"tool_calls":[]}],` +
			`"meta":{},"counts":{},"tags":[],"steps":[],"ratio":0,"u":0,"day":"1970-01-01",` +
			`"int96_time":"2024-05-06T07:08:09.123456Z","uuid":"00000000-0000-0000-0000-000000000000","price":0.05}`,
	}
	p := filepath.Join(t.TempDir(), "py.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	// Version 1 data pages, as pyarrow writes; the other tests' files have
	// parquet-go's version 2.
	w := parquet.NewGenericWriter[pyRow](f, parquet.Compression(&parquet.Snappy), parquet.DataPageVersion(1))
	for _, r := range rows {
		// One row group per row.
		if _, err := w.Write([]pyRow{r}); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if n := rowGroups(t, p); n != 3 {
		t.Errorf("%d row groups, want 3", n)
	}
	got := readParquet(t, p)
	if !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w string
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("row %d:\n got %s\nwant %s", i, g, w)
			}
		}
	}
}

// legacyList annotates a group LIST without parquet-go's three-level shape,
// to write the lists older writers (parquet-mr, Avro, Thrift) left.
type legacyList struct{ parquet.Node }

func (legacyList) Type() parquet.Type { return parquet.List(parquet.Leaf(parquet.Int32Type)).Type() }

func TestParquetRowsLegacyLists(t *testing.T) {
	str := parquet.String()
	schema := parquet.NewSchema("legacy", parquet.Group{
		// More than one field: the repeated group is the element.
		"ws": parquet.Optional(legacyList{parquet.Group{"bag": parquet.Repeated(parquet.Group{
			"x": parquet.Optional(parquet.Leaf(parquet.Int64Type)), "y": parquet.Optional(parquet.Leaf(parquet.Int64Type))})}}),
		// A repeated primitive: it is the element.
		"xs": parquet.Optional(legacyList{parquet.Group{"array": parquet.Repeated(parquet.Leaf(parquet.Int32Type))}}),
		// One field, named array: the group is the element.
		"ys": parquet.Optional(legacyList{parquet.Group{"array": parquet.Repeated(parquet.Group{"s": parquet.Optional(str)})}}),
		// One field, named <list>_tuple: the group is the element.
		"zs": parquet.Optional(legacyList{parquet.Group{"zs_tuple": parquet.Repeated(parquet.Group{"s": parquet.Optional(str)})}}),
	})
	// Columns: ws.bag.x 0, ws.bag.y 1, xs.array 2, ys.array.s 3, zs.zs_tuple.s 4.
	lv := func(v parquet.Value, r, d, c int) parquet.Value { return v.Level(r, d, c) }
	null := parquet.NullValue()
	s := func(x string) parquet.Value { return parquet.ByteArrayValue([]byte(x)) }
	i64 := parquet.Int64Value
	i32 := parquet.Int32Value
	rows := []parquet.Row{
		{lv(i64(1), 0, 3, 0), lv(null, 1, 2, 0), lv(null, 0, 2, 1), lv(i64(4), 1, 3, 1),
			lv(i32(1), 0, 2, 2), lv(i32(2), 1, 2, 2),
			lv(s("a"), 0, 3, 3), lv(null, 1, 2, 3),
			lv(s("b"), 0, 3, 4)},
		{lv(null, 0, 0, 0), lv(null, 0, 0, 1), lv(null, 0, 0, 2), lv(null, 0, 0, 3), lv(null, 0, 0, 4)},
		{lv(null, 0, 1, 0), lv(null, 0, 1, 1), lv(null, 0, 1, 2), lv(null, 0, 1, 3), lv(null, 0, 1, 4)},
	}
	want := []string{
		`{"ws":[{"x":1,"y":null},{"x":null,"y":4}],"xs":[1,2],"ys":[{"s":"a"},{"s":null}],"zs":[{"s":"b"}]}`,
		`{"ws":null,"xs":null,"ys":null,"zs":null}`,
		`{"ws":[],"xs":[],"ys":[],"zs":[]}`,
	}
	p := filepath.Join(t.TempDir(), "legacy.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewWriter(f, schema)
	if _, err := w.WriteRows(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := readParquet(t, p); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func parquetRowsErr(t *testing.T, p string) error {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	return ParquetRows(f, st.Size(), func(int, []byte) error { return nil })
}

func TestParquetRowsErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	if err := WriteParquet(good, [][]byte{[]byte(`{"a":"x","b":[1,2]}`), []byte(`{"a":"y"}`)}, 1); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}

	trunc := filepath.Join(dir, "trunc.parquet")
	os.WriteFile(trunc, b[:len(b)/2], 0o644)
	if err := parquetRowsErr(t, trunc); err == nil || !strings.Contains(err.Error(), "trunc.parquet") ||
		!strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated: err = %v", err)
	}

	jsonl := filepath.Join(dir, "x.jsonl")
	os.WriteFile(jsonl, []byte(`{"a":1}`+"\n"), 0o644)
	if err := parquetRowsErr(t, jsonl); err == nil || !strings.Contains(err.Error(), "x.jsonl: not a Parquet file") {
		t.Errorf("JSONL: err = %v", err)
	}
	empty := filepath.Join(dir, "empty.parquet")
	os.WriteFile(empty, nil, 0o644)
	if err := parquetRowsErr(t, empty); err == nil || !strings.Contains(err.Error(), "not a Parquet file") {
		t.Errorf("empty: err = %v", err)
	}

	// Invalid UTF-8 in a STRING column, in the second row of the messages.
	type msg struct {
		Content *string `parquet:"content,optional"`
	}
	type row struct {
		ID       int64  `parquet:"id"`
		Messages []*msg `parquet:"messages,optional,list" parquet-element:",optional"`
	}
	bad := filepath.Join(dir, "bad.parquet")
	f, err := os.Create(bad)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[row](f)
	w.Write([]row{{ID: 0, Messages: []*msg{{ptr("ok")}}}, {ID: 1, Messages: []*msg{{ptr("ok")}, {ptr("bad \xff")}}}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	err = parquetRowsErr(t, bad)
	if err == nil || !strings.Contains(err.Error(), "bad.parquet: row 1: column messages.list.element.content: invalid UTF-8") {
		t.Errorf("invalid UTF-8: err = %v", err)
	}

	// fn's error stops the read, unwrapped.
	sentinel := fmt.Errorf("stop")
	g, _ := os.Open(good)
	defer g.Close()
	calls := 0
	if err := ParquetRows(g, int64(len(b)), func(int, []byte) error { calls++; return sentinel }); err != sentinel || calls != 1 {
		t.Errorf("err = %v after %d calls, want the callback's after 1", err, calls)
	}
}

func TestParquetJSONEncoding(t *testing.T) {
	for _, s := range []string{"", "plain", "<a href=\"x\">&amp;</a>", "\x00\x01\x1f\x7f", "\b\f\n\r\t\\/",
		"\u2028\u2029", "é漢字😀", "\u00ad\ufeff"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("string %q: got %s, want %s", s, got, want)
		}
	}
	for _, f := range []float64{0, -0.0, 1, -1.5, 1e-6, 9.99e-7, 1e20, 1e21, 123456789.125, 5e-324, math.MaxFloat64} {
		want, _ := json.Marshal(f)
		if got := appendJSONFloat(nil, f, 64); string(got) != string(want) {
			t.Errorf("float64 %v: got %s, want %s", f, got, want)
		}
		if math.IsInf(float64(float32(f)), 0) {
			continue
		}
		want, _ = json.Marshal(float32(f))
		if got := appendJSONFloat(nil, float64(float32(f)), 32); string(got) != string(want) {
			t.Errorf("float32 %v: got %s, want %s", f, got, want)
		}
	}
	if got := appendJSONFloat(nil, math.NaN(), 64); string(got) != "null" {
		t.Errorf("NaN: %s", got)
	}
	for _, c := range []struct {
		unscaled int64
		scale    int
		want     string
	}{{12345, 2, "123.45"}, {-5, 3, "-0.005"}, {7, 0, "7"}, {7, -2, "700"}, {0, 2, "0.00"}} {
		x := new(big.Int).SetInt64(c.unscaled)
		if got := appendDecimal(nil, x, c.scale); string(got) != c.want {
			t.Errorf("decimal %d scale %d: got %s, want %s", c.unscaled, c.scale, got, c.want)
		}
	}
}

// writeBigParquet writes about size bytes of Parquet in row groups of 2 MB:
// rows of incompressible text, so the file is as large as its data.
func writeBigParquet(t testing.TB, p string, size int) int {
	t.Helper()
	type row struct {
		ID      int64   `parquet:"id"`
		Content *string `parquet:"content,optional"`
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[row](f, parquet.Compression(&parquet.Snappy))
	rng := rand.New(rand.NewSource(1))
	const rowBytes, groupRows = 4096, 512
	raw := make([]byte, rowBytes/2)
	n := size / rowBytes
	batch := make([]row, 0, groupRows)
	for i := range n {
		rng.Read(raw)
		batch = append(batch, row{ID: int64(i), Content: ptr(fmt.Sprintf("%x", raw))})
		if len(batch) == groupRows || i == n-1 {
			if _, err := w.Write(batch); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return n
}

func TestParquetRowsStreams(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.parquet")
	const size = 50 << 20
	n := writeBigParquet(t, p, size)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < size*9/10 {
		t.Fatalf("the file is %d bytes, meant to be about %d", st.Size(), size)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	rows := 0
	err = ParquetRows(f, st.Size(), func(row int, rec []byte) error {
		rows++
		if row%64 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows != n {
		t.Fatalf("%d rows, want %d", rows, n)
	}
	// Row groups are 2 MB; reading the whole file at once would be 50.
	growth := int64(peak) - int64(base)
	t.Logf("%d MB file: peak heap growth %.1f MB", st.Size()>>20, float64(growth)/(1<<20))
	if growth > st.Size()/4 {
		t.Errorf("heap grew %d bytes reading a %d byte file: not streamed", growth, st.Size())
	}
}

func BenchmarkParquetRows(b *testing.B) {
	var buf bytes.Buffer
	if err := Generate(&buf, 100, 1); err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	p := filepath.Join(b.TempDir(), "bench.parquet")
	if err := WriteParquet(p, lines, 25); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b.SetBytes(st.Size())
	b.ResetTimer()
	var jsonBytes int64
	for range b.N {
		err := ParquetRows(f, st.Size(), func(_ int, rec []byte) error {
			jsonBytes += int64(len(rec))
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(jsonBytes)/b.Elapsed().Seconds()/1e6, "JSON-MB/s")
}
