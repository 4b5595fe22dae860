// Package tiny is the torch_tiny backend: a small causal language model
// over bytes that PyTorch trains on CPU (train.py, run by `lego tool
// tiny-train`) and that lego runs itself, in Go, where a checkpoint is
// used: the offline policy ranks candidate actions with it and the
// verifier scores trajectories with it. It is the offline stand-in for a
// real checkpoint (LLaMA-Factory's), for the example and CI.
package tiny

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Files of a checkpoint directory.
const (
	ConfigFile  = "config.json"
	WeightsFile = "weights.bin"
)

// Config is a checkpoint's config.json: the architecture, and what
// training wrote about itself.
type Config struct {
	Vocab   int      `json:"vocab"`
	Dim     int      `json:"dim"`
	Layers  int      `json:"layers"`
	Heads   int      `json:"heads"`
	Ctx     int      `json:"ctx"`
	Mode    string   `json:"mode,omitempty"` // sft, generative or regressive
	Tensors []Tensor `json:"tensors,omitempty"`
}

// Tensor names one tensor of weights.bin, in file order.
type Tensor struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

// Check says what is wrong with an architecture.
func (c Config) Check() error {
	switch {
	case c.Vocab != 256:
		return fmt.Errorf("vocab %d: the model reads bytes (256)", c.Vocab)
	case c.Dim < 8 || c.Dim > 1024:
		return fmt.Errorf("dim %d: want 8 to 1024", c.Dim)
	case c.Heads < 1 || c.Dim%c.Heads != 0:
		return fmt.Errorf("heads %d: must divide dim %d", c.Heads, c.Dim)
	case c.Layers < 1 || c.Layers > 16:
		return fmt.Errorf("layers %d: want 1 to 16", c.Layers)
	case c.Ctx < 32 || c.Ctx > 4096:
		return fmt.Errorf("ctx %d: want 32 to 4096", c.Ctx)
	}
	return nil
}

type layer struct {
	ln1w, ln1b, qkvw, qkvb, ow, ob, ln2w, ln2b, fc1w, fc1b, fc2w, fc2b []float32
}

// Model is a loaded checkpoint.
type Model struct {
	Config
	tok, pos, lnfw, lnfb, outw, outb, scorew, scoreb []float32
	layers                                           []layer
}

// Load reads a checkpoint directory.
func Load(dir string) (*Model, error) {
	cp := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(cp)
	if err != nil {
		return nil, err
	}
	m := &Model{}
	if err := json.Unmarshal(b, &m.Config); err != nil {
		return nil, fmt.Errorf("%s: %v", cp, err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("%s: %v", cp, err)
	}
	wp := filepath.Join(dir, WeightsFile)
	raw, err := os.ReadFile(wp)
	if err != nil {
		return nil, err
	}
	byName := map[string][]float32{}
	off := 0
	for _, t := range m.Tensors {
		n := 1
		for _, s := range t.Shape {
			n *= s
		}
		if off+4*n > len(raw) {
			return nil, fmt.Errorf("%s: ends inside tensor %s", wp, t.Name)
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[off+4*i:]))
		}
		byName[t.Name] = v
		off += 4 * n
	}
	if off != len(raw) {
		return nil, fmt.Errorf("%s: %d bytes after the last tensor", wp, len(raw)-off)
	}
	d := m.Dim
	get := func(name string, n int) []float32 {
		v := byName[name]
		if len(v) != n && err == nil {
			err = fmt.Errorf("%s: tensor %s has %d values, want %d", cp, name, len(v), n)
		}
		return v
	}
	m.tok, m.pos = get("tok", m.Vocab*d), get("pos", m.Ctx*d)
	for i := range m.Layers {
		p := fmt.Sprintf("layer%d.", i)
		m.layers = append(m.layers, layer{
			get(p+"ln1_w", d), get(p+"ln1_b", d), get(p+"qkv_w", d*3*d), get(p+"qkv_b", 3*d), get(p+"o_w", d*d), get(p+"o_b", d),
			get(p+"ln2_w", d), get(p+"ln2_b", d), get(p+"fc1_w", d*4*d), get(p+"fc1_b", 4*d), get(p+"fc2_w", 4*d*d), get(p+"fc2_b", d)})
	}
	m.lnfw, m.lnfb = get("lnf_w", d), get("lnf_b", d)
	m.outw, m.outb = get("out_w", d*m.Vocab), get("out_b", m.Vocab)
	m.scorew, m.scoreb = get("score_w", d), get("score_b", 1)
	return m, err
}

// Hidden runs the model over x (at most Ctx bytes) and returns the final
// normalised hidden state of every position, as train.py computes it.
func (m *Model) Hidden(x []byte) [][]float32 {
	d, t := m.Dim, len(x)
	h := make([][]float32, t)
	for i, c := range x {
		h[i] = make([]float32, d)
		for j := range d {
			h[i][j] = m.tok[int(c)*d+j] + m.pos[i*d+j]
		}
	}
	hd := d / m.Heads
	scale := float32(1 / math.Sqrt(float64(hd)))
	norm := make([]float32, d)
	qkv := make([][]float32, t)
	for i := range qkv {
		qkv[i] = make([]float32, 3*d)
	}
	att := make([]float32, d)
	proj := make([]float32, d)
	mid := make([]float32, 4*d)
	w := make([]float32, t)
	for _, l := range m.layers {
		for i := range t {
			layerNorm(norm, h[i], l.ln1w, l.ln1b)
			matVec(qkv[i], norm, l.qkvw, l.qkvb)
		}
		for i := range t {
			for hh := range m.Heads {
				q := qkv[i][hh*hd : (hh+1)*hd]
				max := float32(math.Inf(-1))
				for j := 0; j <= i; j++ {
					k := qkv[j][d+hh*hd : d+(hh+1)*hd]
					var s float32
					for e := range hd {
						s += q[e] * k[e]
					}
					w[j] = s * scale
					if w[j] > max {
						max = w[j]
					}
				}
				var sum float32
				for j := 0; j <= i; j++ {
					w[j] = float32(math.Exp(float64(w[j] - max)))
					sum += w[j]
				}
				o := att[hh*hd : (hh+1)*hd]
				clear(o)
				for j := 0; j <= i; j++ {
					v := qkv[j][2*d+hh*hd : 2*d+(hh+1)*hd]
					for e := range hd {
						o[e] += w[j] / sum * v[e]
					}
				}
			}
			matVec(proj, att, l.ow, l.ob)
			for j := range d {
				h[i][j] += proj[j]
			}
			layerNorm(norm, h[i], l.ln2w, l.ln2b)
			matVec(mid, norm, l.fc1w, l.fc1b)
			for j := range mid {
				mid[j] = max(mid[j], 0)
			}
			matVec(proj, mid, l.fc2w, l.fc2b)
			for j := range d {
				h[i][j] += proj[j]
			}
		}
	}
	for i := range t {
		out := make([]float32, d)
		layerNorm(out, h[i], m.lnfw, m.lnfb)
		h[i] = out
	}
	return h
}

// Logits are the next-byte logits of a hidden state.
func (m *Model) Logits(h []float32) []float32 {
	out := make([]float32, m.Vocab)
	matVec(out, h, m.outw, m.outb)
	return out
}

// Score is the regressive head's logit on a hidden state.
func (m *Model) Score(h []float32) float64 {
	s := m.scoreb[0]
	for i, v := range h {
		s += v * m.scorew[i]
	}
	return float64(s)
}

// matVec sets out = x·W + b, W row-major with len(x) rows.
func matVec(out, x, w, b []float32) {
	copy(out, b)
	n := len(out)
	for i, xv := range x {
		row := w[i*n : (i+1)*n]
		for j, wv := range row {
			out[j] += xv * wv
		}
	}
}

func layerNorm(out, x, w, b []float32) {
	var mean, vr float64
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	for _, v := range x {
		vr += (float64(v) - mean) * (float64(v) - mean)
	}
	inv := 1 / math.Sqrt(vr/float64(len(x))+1e-5)
	for i, v := range x {
		out[i] = float32((float64(v)-mean)*inv)*w[i] + b[i]
	}
}

// LogSoftmax returns log p(c) for logits.
func LogSoftmax(logits []float32, c byte) float64 {
	max := math.Inf(-1)
	for _, v := range logits {
		max = math.Max(max, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - max)
	}
	return float64(logits[c]) - max - math.Log(sum)
}
