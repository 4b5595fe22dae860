// Package legotool makes actions that run `lego tool NAME ...`: the rules
// whose work is Go code in lego itself (images, the data plane). The lego
// binary is the action's tool, so its digest is in the key.
//
// Each rule package registers its tools as package-level values
// (Register) and names them by value in its actions (Action), so that a
// rule naming a tool that does not exist does not compile; `lego tool`
// finds them by name (Lookup, All).
package legotool

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/legobuild/lego/engine"
)

// Tool is one `lego tool` command. It reads only its arguments and
// inputs and writes only the outputs it is given.
type Tool struct {
	Name  string // the command's name, e.g. oci-append
	Usage string // one line: what it does
	// Run parses args with fs, a flag set named after the tool (its
	// errors say "flag provided but not defined" and return), and runs.
	Run func(ctx context.Context, fs *flag.FlagSet, args []string) error
}

// Main runs t on args with a fresh flag set.
func (t *Tool) Main(ctx context.Context, args []string) error {
	return t.Run(ctx, flag.NewFlagSet(t.Name, flag.ContinueOnError), args)
}

var (
	mu       sync.Mutex
	registry = map[string]*Tool{}
)

// Register adds t to the tools `lego tool` runs and returns it. It panics
// on an empty or duplicate name or a nil Run: two packages claiming one
// name is a programming error.
func Register(t *Tool) *Tool {
	mu.Lock()
	defer mu.Unlock()
	if t.Name == "" || t.Run == nil {
		panic(fmt.Sprintf("legotool: tool %q registered without a name or a Run", t.Name))
	}
	if registry[t.Name] != nil {
		panic(fmt.Sprintf("legotool: tool %q registered twice", t.Name))
	}
	registry[t.Name] = t
	return t
}

// Lookup returns the tool named name, or nil.
func Lookup(name string) *Tool {
	mu.Lock()
	defer mu.Unlock()
	return registry[name]
}

// All returns the registered tools sorted by name.
func All() []*Tool {
	mu.Lock()
	defer mu.Unlock()
	out := make([]*Tool, 0, len(registry))
	for _, t := range registry {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Binary is the lego binary actions run; "" = this process's own.
var Binary string

// Path is the lego binary's path.
func Path() (string, error) {
	if Binary != "" {
		return Binary, nil
	}
	// Once: a readlink per action is a seventh of analysing 20,000
	// instances.
	self.once.Do(func() { self.path, self.err = os.Executable() })
	if self.err != nil {
		return "", fmt.Errorf("finding the lego binary: %w", self.err)
	}
	return self.path, nil
}

var self struct {
	once sync.Once
	path string
	err  error
}

// Action returns an action running `lego tool NAME args...` for t.
func Action(t *Tool, env map[string]string, inputs, outputs []*engine.File, args ...string) (*engine.Action, error) {
	bin, err := Path()
	if err != nil {
		return nil, err
	}
	return &engine.Action{
		Mnemonic: Mnemonic(t.Name),
		Args:     append([]string{bin, "tool", t.Name}, args...),
		Env:      engine.ActionEnv(env),
		Inputs:   inputs,
		Outputs:  outputs,
		Tools:    []string{bin},
	}, nil
}

// Mnemonic turns a tool name into an action mnemonic: each dash-separated
// part capitalized, "oci" as OCI (oci-append -> OCIAppend).
func Mnemonic(tool string) string {
	var b strings.Builder
	for _, part := range strings.Split(tool, "-") {
		if part == "oci" {
			b.WriteString("OCI")
		} else if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// Strings is a repeatable string flag: each use appends its value.
type Strings []string

func (s *Strings) String() string     { return strings.Join(*s, ",") }
func (s *Strings) Set(v string) error { *s = append(*s, v); return nil }
