package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/paper"
	"github.com/legobuild/lego/rules/swe/tts"
)

// paper_table and paper_figure over rows that are a genrule's eval.json
// and a source eval.json: rows in the order written, figures the same
// bytes as the package renders, cached on a rebuild, bad attributes
// rejected at analysis.
func TestPaperTableAndFigure(t *testing.T) {
	root := t.TempDir()
	cache := t.TempDir()
	fixture := func(name string) string {
		return mustRead(t, filepath.Join("../../rules/swe/paper/testdata", name, "eval.json"))
	}
	const rows = `{"SFT": "//evals:sft", "+ masking": "//evals:masked", "reported": "//evals:reported.json"}`
	writeFiles(t, root, map[string]string{
		"WORKSPACE":           "",
		"evals/base.json":     fixture("eval_base"),
		"evals/masked.json":   fixture("eval_masked"),
		"evals/reported.json": fixture("reported"),
		"evals/BUILD": `
genrule(name = "sft", srcs = ["base.json"], outs = ["sft/eval.json"], cmd = "cp $< $@")
genrule(name = "masked", srcs = ["masked.json"], outs = ["masked/eval.json"], cmd = "cp $< $@")
`,
		"paper/BUILD": `
paper_table(name = "ablation", rows = ` + rows + `, columns = ["pass@1", "tts@k", "best@k", "k"])
paper_figure(name = "tts", kind = "tts_curve", rows = {"SFT": "//evals:sft", "+ masking": "//evals:masked"})
paper_figure(name = "turns", kind = "turns_vs_resolve", rows = {"SFT": "//evals:sft", "+ masking": "//evals:masked"}, title = "Longer trajectories resolve less")
paper_figure(name = "bars", kind = "ablation", rows = ` + rows + `)
`,
	})
	r := mustLego(t, root, "build", "//paper:all", "--cache_dir="+cache)
	if _, executed, _ := counts(t, r); executed != 6 {
		t.Errorf("executed %d actions, want 6 (2 genrules, 4 paper)\n%s", executed, r.stderr)
	}
	out := filepath.Join(root, "lego-out/paper")
	wantMD := `| Setting | Pass@1 (%) | TTS@K (%) | Best@K (%) | K |
| --- | ---: | ---: | ---: | ---: |
| SFT | 43.3 | 60.0 | 93.3 | 8 |
| + masking | 48.3 | 86.7 | 93.3 | 8 |
| reported | 42.2 | 49.6 | 65.0 | 16 |
`
	if got := mustRead(t, filepath.Join(out, "ablation.md")); got != wantMD {
		t.Errorf("ablation.md:\n%s\nwant:\n%s", got, wantMD)
	}
	if got := mustRead(t, filepath.Join(out, "ablation.csv")); !strings.HasPrefix(got, "row,pass@1,tts@k,best@k,k\nSFT,0.4333,0.6,0.9333,8\n+ masking,") {
		t.Errorf("ablation.csv:\n%s", got)
	}

	// The figures are the bytes the package renders in this process.
	read := func(dir string) *tts.Eval {
		e, err := tts.Read(filepath.Join("../../rules/swe/paper/testdata", dir))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	two := []paper.Row{{Label: "SFT", Eval: read("eval_base")}, {Label: "+ masking", Eval: read("eval_masked")}}
	for _, f := range []struct{ name, kind, title string }{{"tts", paper.TTSCurve, ""}, {"turns", paper.TurnsVsResolve, "Longer trajectories resolve less"}} {
		svg, pngB, err := paper.Figure(f.kind, two, f.title)
		if err != nil {
			t.Fatal(err)
		}
		gotSVG, _ := os.ReadFile(filepath.Join(out, f.name+".svg"))
		gotPNG, _ := os.ReadFile(filepath.Join(out, f.name+".png"))
		if !bytes.Equal(gotSVG, svg) || !bytes.Equal(gotPNG, pngB) {
			t.Errorf("%s: the built figure differs from a render of the same data", f.name)
		}
	}
	img, err := png.Decode(bytes.NewReader([]byte(mustRead(t, filepath.Join(out, "bars.png")))))
	if err != nil || img.Bounds().Dx() != 1050 {
		t.Errorf("bars.png: %v", err)
	}
	if svg := mustRead(t, filepath.Join(out, "bars.svg")); !strings.Contains(svg, ">reported<") || !strings.Contains(svg, ">42.2<") {
		t.Error("bars.svg does not show the reported row")
	}

	r = mustLego(t, root, "build", "//paper:all", "--cache_dir="+cache)
	if _, executed, _ := counts(t, r); executed != 0 {
		t.Errorf("a rebuild executed %d actions", executed)
	}

	// Bad attributes fail at analysis, naming the BUILD line and the
	// allowed values; a row without runs fails in the tool, naming the
	// file and the field.
	for _, tc := range []struct{ build, want string }{
		{`paper_table(name = "t", rows = ` + rows + `, columns = ["pass@1", "pass@8"])`,
			`paper/BUILD:1:12: //paper:t (paper_table): attribute columns: "pass@8" is not a column; allowed: pass@1, tts@k, best@k, k, instances, tts@N, best@N`},
		{`paper_figure(name = "f", kind = "pie", rows = ` + rows + `)`,
			`attribute kind: "pie" is not a figure kind; allowed: tts_curve, turns_vs_resolve, ablation`},
		{`paper_figure(name = "f", kind = "turns_vs_resolve", rows = ` + rows + `)`,
			`row "reported": evals/reported.json: field per_instance: missing`},
		{`paper_table(name = "t", rows = {"a": "//evals:base.json"}, columns = ["tts@9"])`,
			`column tts@9: evals/base.json: field curve: no point for k = 9: K is 8`},
	} {
		writeFiles(t, root, map[string]string{"paper/BUILD": tc.build})
		r := lego(t, root, "build", "//paper:all", "--cache_dir="+cache)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, want an error %q\n%s", tc.build, r.code, tc.want, r.stderr)
		}
	}
}
