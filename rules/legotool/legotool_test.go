package legotool

import (
	"context"
	"flag"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	ran := ""
	a := Register(&Tool{Name: "test-zeta", Usage: "z", Run: func(_ context.Context, fs *flag.FlagSet, args []string) error {
		v := fs.String("v", "", "")
		if err := fs.Parse(args); err != nil {
			return err
		}
		ran = fs.Name() + ":" + *v
		return nil
	}})
	b := Register(&Tool{Name: "test-alpha", Run: func(context.Context, *flag.FlagSet, []string) error { return nil }})
	if Lookup("test-zeta") != a || Lookup("test-alpha") != b || Lookup("test-none") != nil {
		t.Fatal("Lookup does not find what Register added")
	}
	if err := a.Main(context.Background(), []string{"--v", "x"}); err != nil || ran != "test-zeta:x" {
		t.Errorf("Main: %v, ran %q", err, ran)
	}
	if err := a.Main(context.Background(), []string{"--nope"}); err == nil || !strings.Contains(err.Error(), "flag provided but not defined") {
		t.Errorf("an unknown flag: %v", err)
	}
	var names []string
	for _, t := range All() {
		names = append(names, t.Name)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "test-alpha,test-zeta") {
		t.Errorf("All is not sorted by name: %s", got)
	}
	for _, bad := range []*Tool{
		{Name: "test-zeta", Run: a.Run}, // twice
		{Name: "", Run: a.Run},
		{Name: "test-norun"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%+v) did not panic", bad)
				}
			}()
			Register(bad)
		}()
	}
}

func TestAction(t *testing.T) {
	Binary = "/bin/lego"
	defer func() { Binary = "" }()
	tool := &Tool{Name: "oci-frob-it"}
	a, err := Action(tool, map[string]string{"K": "V"}, nil, nil, "--x", "1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Mnemonic != "OCIFrobIt" || strings.Join(a.Args, " ") != "/bin/lego tool oci-frob-it --x 1" || a.Env["K"] != "V" || len(a.Tools) != 1 || a.Tools[0] != "/bin/lego" {
		t.Errorf("action %+v", a)
	}
}

func TestMnemonic(t *testing.T) {
	for in, want := range map[string]string{"oci-thing": "OCIThing", "a-b-c": "ABC", "x": "X", "two--dashes": "TwoDashes"} {
		if got := Mnemonic(in); got != want {
			t.Errorf("Mnemonic(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStrings(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var s Strings
	fs.Var(&s, "s", "")
	if err := fs.Parse([]string{"--s", "a", "--s=b,c"}); err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[0] != "a" || s[1] != "b,c" || s.String() != "a,b,c" {
		t.Errorf("got %q", s)
	}
}
