// Package install turns a task instance's install_config (SWE-rebench's:
// python, packages, reqs_path, env_yml_path, pip_packages, pre_install,
// install, test_cmd, log_parser, env_vars) into the shell steps that build
// its environment, in SWE-rebench's order: the Python environment, the
// requirements, pip_packages (the env, shared by a repository's instances
// at one environment_setup_commit), then the repository at the base
// commit, pre_install and install (the instance's layer).
//
// Every step is wrapped so that its failure is recorded, not raised: a
// repository that does not install is one dropped environment with its
// reason in the task set's report, not a failed build of 3,000 (see
// Wrap).
package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// Config is an install_config as published. Lists may be given as a
// list, one string, or null; test_cmd and install as a string or a list
// of commands.
type Config struct {
	Python      string
	Packages    string // "requirements.txt", "environment.yml", or package specs
	ReqsPath    []string
	EnvYmlPath  []string
	PipPackages []string
	PreInstall  []string
	Install     []string
	TestCmd     string
	LogParser   string
	EnvVars     map[string]string
}

// Parse reads an install_config; an error names the field
// (install_config.FIELD) and what is wrong with it. A null or absent
// config is an error: without one there is nothing to build.
func Parse(raw json.RawMessage) (*Config, string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, "install_config", fmt.Errorf("absent: an env set builds each instance's env from its install_config")
	}
	// One pass over the object; each member is read below.
	var m struct {
		Python      json.RawMessage `json:"python"`
		Packages    json.RawMessage `json:"packages"`
		ReqsPath    json.RawMessage `json:"reqs_path"`
		EnvYmlPath  json.RawMessage `json:"env_yml_path"`
		PipPackages json.RawMessage `json:"pip_packages"`
		PreInstall  json.RawMessage `json:"pre_install"`
		Install     json.RawMessage `json:"install"`
		TestCmd     json.RawMessage `json:"test_cmd"`
		LogParser   json.RawMessage `json:"log_parser"`
		EnvVars     json.RawMessage `json:"env_vars"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, "install_config", fmt.Errorf("not an object: %v", err)
	}
	c := &Config{}
	str := func(d *string) func(json.RawMessage) error {
		return func(v json.RawMessage) error { return json.Unmarshal(v, d) }
	}
	// split: a string of several items is cut at white space
	// (pip_packages "numpy pytest"); else it is one item (a command).
	list := func(d *[]string, split bool) func(json.RawMessage) error {
		return func(v json.RawMessage) (err error) { *d, err = words(v, split); return err }
	}
	for _, f := range []struct {
		name string
		v    json.RawMessage
		read func(json.RawMessage) error
	}{
		{"python", m.Python, func(v json.RawMessage) error {
			var n json.Number // 3.9 as a number or a string
			err := json.Unmarshal(v, &n)
			if err != nil {
				err = json.Unmarshal(v, &c.Python)
			} else {
				c.Python = n.String()
			}
			return err
		}},
		{"packages", m.Packages, str(&c.Packages)},
		{"reqs_path", m.ReqsPath, list(&c.ReqsPath, true)},
		{"env_yml_path", m.EnvYmlPath, list(&c.EnvYmlPath, true)},
		{"pip_packages", m.PipPackages, list(&c.PipPackages, true)},
		{"pre_install", m.PreInstall, list(&c.PreInstall, false)},
		{"install", m.Install, list(&c.Install, false)},
		{"test_cmd", m.TestCmd, func(v json.RawMessage) error {
			// A list of commands runs as one shell line.
			l, err := words(v, false)
			c.TestCmd = strings.Join(l, " && ")
			return err
		}},
		{"log_parser", m.LogParser, str(&c.LogParser)},
		{"env_vars", m.EnvVars, func(v json.RawMessage) error { return envVars(v, &c.EnvVars) }},
	} {
		if len(f.v) == 0 || string(f.v) == "null" {
			continue
		}
		if err := f.read(f.v); err != nil {
			return nil, "install_config." + f.name, err
		}
	}
	if strings.TrimSpace(c.TestCmd) == "" {
		return nil, "install_config.test_cmd", fmt.Errorf("empty: the instance's tests cannot run")
	}
	if _, err := Framework(c.LogParser); err != nil {
		return nil, "install_config.log_parser", err
	}
	for _, p := range append(slices.Clone(c.ReqsPath), c.EnvYmlPath...) {
		if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "../") {
			return nil, "install_config.reqs_path", fmt.Errorf("%q is not a file of the repository", p)
		}
	}
	if c.Python != "" && strings.Trim(c.Python, "0123456789.") != "" {
		return nil, "install_config.python", fmt.Errorf("%q is not a Python version", c.Python)
	}
	return c, "", nil
}

// words reads a list of strings given as a list or as one string.
func words(v json.RawMessage, split bool) ([]string, error) {
	var l []string
	if err := json.Unmarshal(v, &l); err == nil {
		return slices.DeleteFunc(l, func(s string) bool { return strings.TrimSpace(s) == "" }), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("want a string or a list of strings")
	}
	if split {
		return strings.Fields(s), nil
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	return []string{s}, nil
}

func envVars(v json.RawMessage, d *map[string]string) error {
	var m map[string]any
	if err := json.Unmarshal(v, &m); err != nil {
		return fmt.Errorf("want an object of names to values")
	}
	*d = map[string]string{}
	for k, x := range m {
		if k == "" || strings.ContainsAny(k, "= \t\n") {
			return fmt.Errorf("%q is not a variable name", k)
		}
		switch x := x.(type) {
		case string:
			(*d)[k] = x
		case float64, bool:
			(*d)[k] = fmt.Sprint(x)
		default:
			return fmt.Errorf("%s: want a string value", k)
		}
	}
	return nil
}

// Frameworks are the test runners whose output the harness parses.
var Frameworks = []string{"pytest", "unittest", "django", "sympy"}

// Framework names the harness's parser for a log_parser value: one of
// Frameworks, or SWE-bench's parse_log_* name for it ("" is pytest, as
// for most of SWE-rebench).
func Framework(logParser string) (string, error) {
	p := strings.TrimPrefix(logParser, "parse_log_")
	switch {
	case p == "":
		return "pytest", nil
	case slices.Contains(Frameworks, p):
		return p, nil
	case p == "pytest_v2" || p == "pytest_options":
		// pytest with ANSI colours or parametrised ids: the -rA summary.
		return "pytest", nil
	}
	return "", fmt.Errorf("%q is not a parser lego has (%s, or SWE-bench's parse_log_ names of them)", logParser, strings.Join(Frameworks, ", "))
}

// Venv is where an image env's Python environment is; a directory env's
// is at DirRoot/venv, its repository at DirRoot/testbed (a fixed path,
// in the action's private /tmp, because a virtual environment and an
// editable install name absolute paths).
const (
	Venv    = "/opt/lego-venv"
	DirRoot = "/tmp/lego-env"
	// Failed is the file a failed step leaves, saying which step failed
	// and how: at the image's root, or in a directory env.
	Failed = "lego-env-failed"
)

// ReqsDir is where the requirements files are, in an image env.
const ReqsDir = "/lego/reqs"

// EnvKey identifies what an env at one commit of a repository holds:
// instances whose configs agree on it share the env.
func (c *Config) EnvKey() string {
	h := sha256.New()
	json.NewEncoder(h).Encode([]any{c.Python, c.Packages, c.ReqsPath, c.EnvYmlPath, c.PipPackages})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Requirements are the repository files the env's steps read: reqs_path
// and env_yml_path, as the packages field asks for them.
func (c *Config) Requirements() []string {
	var out []string
	switch c.Packages {
	case "requirements.txt":
		out = c.ReqsPath
	case "environment.yml":
		out = c.EnvYmlPath
	default:
		// Given without packages naming them, they are read as well.
		out = append(slices.Clone(c.ReqsPath), c.EnvYmlPath...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Steps of an env, as shell commands. venv is the Python environment's
// directory and reqs the directory holding Requirements() (by their
// repository paths); network false makes pip use no index (the
// packages must be there already). The commands run with venv/bin first
// on PATH.
func (c *Config) VenvStep(venv string) string {
	want := c.Python
	return fmt.Sprintf(`py=python3
if [ -n %[2]s ] && command -v python%[2]s >/dev/null 2>&1; then py=python%[2]s; fi
have=$("$py" -c 'import sys; print("%%d.%%d" %% sys.version_info[:2])')
case "$have" in %[2]s|%[2]s.*) ;; *) [ -z %[2]s ] || echo "lego-warning: install_config python %[3]s: the base has $have" >&2 ;; esac
"$py" -m venv --without-pip --system-site-packages %[1]s
# The base's pip, run by the environment's Python, installs into it.
for p in pip pip3; do printf '#!/bin/sh\nexec %[1]s/bin/python -m pip "$@"\n' > %[1]s/bin/$p; chmod 755 %[1]s/bin/$p; done`,
		Quote(venv), Quote(want), want)
}

// PackageSteps install the requirements and pip_packages.
func (c *Config) PackageSteps(reqs string, network bool) []string {
	pip := "python -m pip install --disable-pip-version-check --no-input"
	if !network {
		pip += " --no-index"
	}
	var steps []string
	for _, r := range c.Requirements() {
		f := Quote(path.Join(reqs, r))
		if strings.HasSuffix(r, ".yml") || strings.HasSuffix(r, ".yaml") {
			steps = append(steps, fmt.Sprintf(`if ! command -v conda >/dev/null 2>&1; then echo "env_yml_path %s needs conda in the base image" >&2; exit 1; fi
conda env update -q -p "$VIRTUAL_ENV" -f %s`, r, f))
			continue
		}
		steps = append(steps, fmt.Sprintf(`[ -f %[1]s ] || { echo "reqs_path %[2]s: no such file at the environment commit" >&2; exit 1; }
%[3]s -r %[1]s`, f, r, pip))
	}
	if c.Packages != "" && c.Packages != "requirements.txt" && c.Packages != "environment.yml" {
		steps = append(steps, pip+" "+Quote(strings.Fields(c.Packages)...))
	}
	if len(c.PipPackages) > 0 {
		steps = append(steps, pip+" "+Quote(c.PipPackages...))
	}
	return steps
}

// InstanceSteps are pre_install and install, run in the repository.
func (c *Config) InstanceSteps() []string {
	return append(slices.Clone(c.PreInstall), c.Install...)
}

// Wrap makes step record its failure instead of failing: once a step
// has failed (failed, a file, exists) the later ones do nothing; a
// failing one writes failed with its number, command and output's tail.
// Its output goes to the action's log either way.
func Wrap(n int, prelude, step, failed string) string {
	log := failed + ".log"
	return fmt.Sprintf(`[ -e %[1]s ] && exit 0
set +e
( set -e
%[6]s
%[2]s
) > %[3]s 2>&1
code=$?
cat %[3]s >&2
if [ $code -ne 0 ]; then
  { printf 'step %[4]d (%%s) exited %%d: ' %[5]s $code; tail -c 1500 %[3]s; } > %[1]s
fi
rm -f %[3]s
exit 0`, Quote(failed), step, Quote(log), n, Quote(firstLine(step)), prelude)
}

// WrapAll is Wrap of each of steps, numbered from first.
func WrapAll(first int, prelude string, steps []string, failed string) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = Wrap(first+i, prelude, s, failed)
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// Prelude is the shell line a step starts with: the Python environment
// at venv first on PATH, and the instance's env_vars.
func Prelude(venv string, vars map[string]string) string {
	// No pip cache: HOME is no place to write in a sandbox.
	line := "export PATH=" + Quote(venv+"/bin") + `:"$PATH" VIRTUAL_ENV=` + Quote(venv) + " PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1"
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		line += " " + k + "=" + Quote(vars[k])
	}
	return line
}

// Quote quotes words for sh.
func Quote(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// Parser is Parse once per distinct install_config text: a set's
// instances share a few configs per repository. The configs it returns
// are shared; callers do not change them.
type Parser struct{ seen map[string]parsed }

type parsed struct {
	c     *Config
	field string
	err   error
}

func (p *Parser) Parse(raw json.RawMessage) (*Config, string, error) {
	if r, ok := p.seen[string(raw)]; ok {
		return r.c, r.field, r.err
	}
	c, field, err := Parse(raw)
	if p.seen == nil {
		p.seen = map[string]parsed{}
	}
	p.seen[string(raw)] = parsed{c, field, err}
	return c, field, err
}
