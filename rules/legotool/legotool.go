// Package legotool makes actions that run `lego tool NAME ...`: the rules
// whose work is Go code in lego itself (images, the data plane). The lego
// binary is the action's tool, so its digest is in the key.
package legotool

import (
	"fmt"
	"os"
	"strings"

	"github.com/legobuild/lego/engine"
)

// Binary is the lego binary actions run; "" = this process's own.
var Binary string

// Path is the lego binary's path.
func Path() (string, error) {
	if Binary != "" {
		return Binary, nil
	}
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the lego binary: %w", err)
	}
	return p, nil
}

// Action returns an action running `lego tool name args...`.
func Action(name string, env map[string]string, inputs, outputs []*engine.File, args ...string) (*engine.Action, error) {
	bin, err := Path()
	if err != nil {
		return nil, err
	}
	return &engine.Action{
		Mnemonic: Mnemonic(name),
		Args:     append([]string{bin, "tool", name}, args...),
		Env:      engine.ActionEnv(env),
		Inputs:   inputs,
		Outputs:  outputs,
		Tools:    []string{bin},
	}, nil
}

// Mnemonic turns a tool name into an action mnemonic: oci-append ->
// OCIAppend, traj-mask -> TrajMask.
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
