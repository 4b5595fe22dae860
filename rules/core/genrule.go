// Package core holds the built-in rules every workspace has: genrule and
// filegroup. Their analysis is Go, so a BUILD file of 100k genrules analyses
// without running Starlark rule code.
package core

import (
	"fmt"
	"strings"
	"time"

	"github.com/legobuild/lego/engine"
)

// Rules lists the built-in rule classes.
func Rules() []engine.Rule { return []engine.Rule{Genrule{}, Filegroup{}} }

// Shell runs genrule commands; it is a tool of the action, so its digest is
// in the key.
const Shell = "/bin/bash"

// Prologue comes before every genrule command, as in Bazel: a failing
// step, an unset variable or a failing stage of a pipe (a killed `cat` in
// `cat big | sha256sum > $@`) fails the action instead of caching what
// the last command made of it. A command opts out with
// `set +euo pipefail` of its own. It is on the command's first line, so
// bash's line numbers in errors are the command's.
const Prologue = "set -euo pipefail; "

// Genrule runs a shell command over srcs to produce outs.
type Genrule struct{}

func (Genrule) Kind() string { return "genrule" }

func (Genrule) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "srcs", Type: engine.AttrLabelList, Doc: "inputs of the command"},
		{Name: "outs", Type: engine.AttrStringList, Mandatory: true, Doc: "files the command writes, relative to the package"},
		{Name: "cmd", Type: engine.AttrString, Mandatory: true, Doc: "bash command, run after `set -euo pipefail` (a command opts out with `set +euo pipefail`); make variables $(SRCS) $(OUTS) $@ $< $(location L) $(locations L) $(RULEDIR)"},
		{Name: "tools", Type: engine.AttrLabelList, Doc: "programs the command runs (inputs too)"},
		{Name: "env", Type: engine.AttrStringDict, Doc: "environment variables of the command"},
		{Name: "resources", Type: engine.AttrStringDict, Doc: "cpu, memory, gpus, gpu_memory"},
		{Name: "timeout", Type: engine.AttrInt, Doc: "seconds; 0 = none"},
		{Name: "image", Type: engine.AttrLabel, Doc: "an image target to run the command in (a container); none = a host process"},
		{Name: "network", Type: engine.AttrBool, Doc: "let the command use the network (containers have none otherwise)"},
	}
}

func (Genrule) Analyze(ctx *engine.Context) error {
	outNames := ctx.Attr("outs").([]string)
	if len(outNames) == 0 {
		return fmt.Errorf("attribute outs: at least one output is required")
	}
	outs := make([]*engine.File, len(outNames))
	for i, n := range outNames {
		f, err := ctx.DeclareFile(n, false)
		if err != nil {
			return fmt.Errorf("attribute outs: %w", err)
		}
		outs[i] = f
	}
	srcs := ctx.Files("srcs")
	tools := ctx.Files("tools")
	cmd, err := ExpandMake(ctx, ctx.Attr("cmd").(string), srcs, outs)
	if err != nil {
		return fmt.Errorf("attribute cmd: %w", err)
	}
	res, err := engine.ParseResources(ctx.Attr("resources").(map[string]string))
	if err != nil {
		return fmt.Errorf("attribute %w", err)
	}
	env := engine.ActionEnv(ctx.Attr("env").(map[string]string))
	a := &engine.Action{
		Mnemonic:  "Genrule",
		Args:      []string{Shell, "-c", Prologue + cmd},
		Env:       env,
		Inputs:    append(append([]*engine.File{}, srcs...), tools...),
		Outputs:   outs,
		Resources: res,
		Tools:     []string{Shell},
	}
	if t := ctx.Attr("timeout").(int64); t > 0 {
		a.Timeout = secs(t)
	}
	if l := ctx.Attr("image").(engine.Label); l != (engine.Label{}) {
		info := engine.ImageOf(ctx.Dep(l))
		if info == nil {
			return fmt.Errorf("attribute image: %s is a %s, not an image", l, ctx.Dep(l).Kind())
		}
		a.Image = info.Manifest
	}
	a.Network = ctx.Attr("network").(bool)
	return ctx.AddAction(a)
}

// ExpandMake substitutes Bazel's make variables in a genrule command.
func ExpandMake(ctx *engine.Context, cmd string, srcs, outs []*engine.File) (string, error) {
	var b strings.Builder
	paths := func(fs []*engine.File) string {
		p := make([]string, len(fs))
		for i, f := range fs {
			p[i] = f.Path
		}
		return strings.Join(p, " ")
	}
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		if c != '$' || i+1 == len(cmd) {
			b.WriteByte(c)
			continue
		}
		next := cmd[i+1]
		switch next {
		case '$':
			b.WriteByte('$')
			i++
		case '@':
			if len(outs) != 1 {
				return "", fmt.Errorf("$@ needs exactly one output, the rule has %d", len(outs))
			}
			b.WriteString(outs[0].Path)
			i++
		case '<':
			if len(srcs) != 1 {
				return "", fmt.Errorf("$< needs exactly one source file, the rule has %d", len(srcs))
			}
			b.WriteString(srcs[0].Path)
			i++
		case '(':
			end := strings.IndexByte(cmd[i:], ')')
			if end < 0 {
				return "", fmt.Errorf("unterminated $( at offset %d", i)
			}
			expr := cmd[i+2 : i+end]
			i += end
			fn, arg, hasArg := strings.Cut(expr, " ")
			switch {
			case expr == "SRCS":
				b.WriteString(paths(srcs))
			case expr == "OUTS":
				b.WriteString(paths(outs))
			case expr == "RULEDIR":
				b.WriteString(strings.TrimSuffix(engine.OutDir+"/"+ctx.Label().Pkg, "/"))
			case hasArg && (fn == "location" || fn == "locations" || fn == "execpath" || fn == "execpaths"):
				fs, err := locate(ctx, strings.TrimSpace(arg), outs)
				if err != nil {
					return "", err
				}
				if !strings.HasSuffix(fn, "s") && len(fs) != 1 {
					return "", fmt.Errorf("$(%s %s) names %d files; use $(%ss ...)", fn, arg, len(fs), fn)
				}
				b.WriteString(paths(fs))
			default:
				return "", fmt.Errorf("unknown make variable $(%s)", expr)
			}
		default:
			b.WriteByte(c) // a shell variable such as $HOME or ${x}
		}
	}
	return b.String(), nil
}

// locate resolves $(location L): L must be named in srcs, tools or outs.
func locate(ctx *engine.Context, s string, outs []*engine.File) ([]*engine.File, error) {
	l, err := engine.ParseLabel(s, ctx.Label().Pkg)
	if err != nil {
		return nil, err
	}
	if l.Pkg == ctx.Label().Pkg {
		for _, o := range outs {
			if o.ShortPath() == strings.TrimPrefix(l.Pkg+"/"+l.Name, "/") {
				return []*engine.File{o}, nil
			}
		}
	}
	for _, attr := range []string{"srcs", "tools"} {
		for _, d := range ctx.Attr(attr).([]engine.Label) {
			if d == l {
				return ctx.Dep(d).Files, nil
			}
		}
	}
	return nil, fmt.Errorf("$(location %s): %s is not in srcs, tools or outs", s, l)
}

// Filegroup names a set of files.
type Filegroup struct{}

func (Filegroup) Kind() string { return "filegroup" }

func (Filegroup) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{{Name: "srcs", Type: engine.AttrLabelList, Doc: "the files"}}
}

func (Filegroup) Analyze(ctx *engine.Context) error {
	ctx.Target.Files = append([]*engine.File{}, ctx.Files("srcs")...)
	return nil
}

func secs(n int64) time.Duration { return time.Duration(n) * time.Second }
