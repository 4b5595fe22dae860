package llamafactory

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// flatten lists "path = JSON value" in document order.
func flatten(t *testing.T, b []byte) ([]string, map[string]string) {
	t.Helper()
	var order []string
	m := map[string]string{}
	var walk func(prefix string, raw []byte)
	walk = func(prefix string, raw []byte) {
		fields, err := objectFields(raw)
		if err != nil { // a leaf
			var v any
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%s: %v", prefix, err)
			}
			out, _ := json.Marshal(v)
			order = append(order, prefix)
			m[prefix] = string(out)
			return
		}
		for _, f := range fields {
			p := f.name
			if prefix != "" {
				p = prefix + "." + f.name
			}
			walk(p, f.raw)
		}
	}
	walk("", b)
	return order, m
}

// The generated configuration holds the keys and values of LLaMA-Factory's
// (and the SWE-Lego fork's) examples/deepspeed/ds_z3_config.json, in the
// same order.
func TestDeepSpeedMatchesExample(t *testing.T) {
	wantOrder, want := pairFile(t, "ds_z3_config.txt")
	gotOrder, got := flatten(t, DeepSpeedZeRO3())
	if !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %s, example has %s", k, got[k], v)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("extra %s = %s", k, v)
			}
		}
	}
	if !reflect.DeepEqual(gotOrder, wantOrder) {
		t.Errorf("key order %v, example %v", gotOrder, wantOrder)
	}
	if !json.Valid(DeepSpeedZeRO3()) || !bytes.HasSuffix(DeepSpeedZeRO3(), []byte("}\n")) {
		t.Error("not one JSON document ending in a newline")
	}
}

// "auto" batch values leave the batch geometry to the YAML, so one file
// serves every GPU count.
func TestDeepSpeedAutoBatch(t *testing.T) {
	var c map[string]any
	if err := json.Unmarshal(DeepSpeedZeRO3(), &c); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"} {
		if c[k] != "auto" {
			t.Errorf("%s = %v, want auto", k, c[k])
		}
	}
	z := c["zero_optimization"].(map[string]any)
	if z["stage"] != 3.0 || z["stage3_gather_16bit_weights_on_model_save"] != true {
		t.Errorf("zero_optimization = %v", z)
	}
}
