package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/legobuild/lego/starlark"
)

func TestApplyRCLine(t *testing.T) {
	for _, tc := range []struct {
		cmd, line string
		want      string // the flags' values after, or the error
	}{
		{"build", "build --jobs=3 --keep_going --define a=1 -define=b=2 --cache_dir /c", "jobs=3 keep_going=true define=a=1,b=2 cache_dir=/c"},
		{"build", "build --keep_going=false -j 2", "jobs=2 keep_going=false define= cache_dir=/d"},
		// common: what the command does not take is skipped, value and all.
		{"query", "common --jobs 4 --cache_dir=/q --keep_going --remote_cache grpc://x", "jobs=? keep_going=? define= cache_dir=/q"},
		{"query", "common --output=json", "jobs=? keep_going=? define= cache_dir=/d"},
		// A command's own line: the same flags are errors.
		{"query", "query --jobs 4", "unknown flag --jobs for lego query"},
		{"build", "build --colour=red", "unknown flag --colour for lego build"},
		{"build", "build --jobs=many", `invalid value "many" for flag --jobs: parse error`},
		{"build", "common --jobs many", `invalid value "many" for flag --jobs: parse error`},
		{"build", "build --keep_going=maybe", `invalid value "maybe" for flag --keep_going: parse error`},
		{"build", "build --cache_dir=", `invalid value "" for flag --cache_dir: empty (it would make the working directory the cache)`},
		{"build", "build --jobs", "flag --jobs needs a value"},
		{"build", "build --keep_going yes", `"yes" is not a flag (a .legorc line is COMMAND --flag...)`},
		{"build", "build ---jobs=1", `"---jobs=1" is not a flag (a .legorc line is COMMAND --flag...)`},
		{"build", "build -- --jobs=1", `"--" is not a flag (a .legorc line is COMMAND --flag...)`},
		{"build", "build --=1", `"--=1" is not a flag (a .legorc line is COMMAND --flag...)`},
	} {
		fs := flag.NewFlagSet(tc.cmd, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		if tc.cmd == "build" {
			var f buildFlags
			f.register(fs)
		} else {
			var c commonFlags
			c.register(fs)
			fs.String("output", "label", "")
		}
		fs.Set("cache_dir", "/d")
		got := ""
		if err := applyRCLine(fs, rcLine(tc.line)); err != nil {
			got = err.Error()
		} else {
			var vals []string
			for _, name := range []string{"jobs", "keep_going", "define", "cache_dir"} {
				v := "?"
				if f := fs.Lookup(name); f != nil {
					v = f.Value.String()
				}
				vals = append(vals, name+"="+v)
			}
			got = strings.Join(vals, " ")
		}
		if got != tc.want {
			t.Errorf("lego %s, %q:\n got %s\nwant %s", tc.cmd, tc.line, got, tc.want)
		}
	}
}

func rcLine(s string) starlark.RCLine {
	f := strings.Fields(s)
	return starlark.RCLine{File: ".legorc", Line: 1, Command: f[0], Args: f[1:]}
}
