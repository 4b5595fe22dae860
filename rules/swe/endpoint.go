package swe

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/llm"
)

// EndpointInfo is what a model_endpoint provides: its settings as a file
// (an input of the actions that call it, so a change reruns them) and the
// variable holding its API key, passed to those actions when they run.
type EndpointInfo struct {
	Config    *engine.File
	APIKeyEnv string
}

type endpointKey struct{}

// EndpointOf returns what a model_endpoint target provides, or nil.
func EndpointOf(t *engine.Target) *EndpointInfo {
	v, _ := t.Providers[endpointKey{}].(*EndpointInfo)
	return v
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ModelEndpoint is model_endpoint: an OpenAI-compatible chat completions
// endpoint (vLLM, SGLang, a hosted API) that rules call through lego's
// client (package llm).
type ModelEndpoint struct{}

func (ModelEndpoint) Kind() string { return "model_endpoint" }

func (ModelEndpoint) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "base_url", Type: engine.AttrString, Mandatory: true, Doc: "the API root, e.g. http://gpu-host:8000/v1"},
		{Name: "model", Type: engine.AttrString, Mandatory: true, Doc: "the model name the endpoint serves"},
		{Name: "api_key_env", Type: engine.AttrString, Doc: "the environment variable holding the API key, read when an action runs; never stored"},
		{Name: "temperature", Type: engine.AttrString, Doc: `sampling temperature, e.g. "0.7" (default: the endpoint's)`},
		{Name: "top_p", Type: engine.AttrString, Doc: `nucleus sampling, e.g. "0.95" (default: the endpoint's)`},
		{Name: "max_tokens", Type: engine.AttrInt, Doc: "tokens per completion (0: the endpoint's default)"},
		{Name: "max_concurrency", Type: engine.AttrInt, Default: int64(8), Doc: "requests in flight from one action"},
		{Name: "timeout", Type: engine.AttrInt, Default: int64(600), Doc: "seconds per request"},
		{Name: "retries", Type: engine.AttrInt, Default: int64(llm.DefaultRetries), Doc: "tries after the first on a 429, 5xx or no answer (1 to 100); then the action fails as the endpoint's, is not cached, and reruns on the next build"},
	}
}

func (ModelEndpoint) Analyze(ctx *engine.Context) error {
	c := llm.Config{
		BaseURL:        ctx.Attr("base_url").(string),
		Model:          ctx.Attr("model").(string),
		APIKeyEnv:      ctx.Attr("api_key_env").(string),
		MaxTokens:      int(ctx.Attr("max_tokens").(int64)),
		MaxConcurrency: int(ctx.Attr("max_concurrency").(int64)),
		TimeoutSeconds: int(ctx.Attr("timeout").(int64)),
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("attribute base_url: %q is not an http(s) URL", c.BaseURL)
	}
	if u, _ := url.Parse(c.BaseURL); u.User != nil {
		return fmt.Errorf("attribute base_url: holds credentials; name a variable in api_key_env instead")
	}
	if c.Model == "" {
		return fmt.Errorf("attribute model: empty")
	}
	if c.APIKeyEnv != "" && !envName.MatchString(c.APIKeyEnv) {
		return fmt.Errorf("attribute api_key_env: %q is not a variable name (give the name, not the key)", c.APIKeyEnv)
	}
	for _, f := range []struct {
		attr string
		dst  **float64
	}{{"temperature", &c.Temperature}, {"top_p", &c.TopP}} {
		s := ctx.Attr(f.attr).(string)
		if s == "" {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 {
			return fmt.Errorf("attribute %s: %q is not a non-negative number", f.attr, s)
		}
		*f.dst = &v
	}
	if c.MaxConcurrency < 1 || c.TimeoutSeconds < 1 || c.MaxTokens < 0 {
		return fmt.Errorf("attribute max_concurrency: max_concurrency and timeout must be at least 1, max_tokens not negative")
	}
	if r := ctx.Attr("retries").(int64); r < 1 || r > 100 {
		return fmt.Errorf("attribute retries: %d is not between 1 and 100", r)
	} else if r != llm.DefaultRetries {
		// The default stays out of the file (the client's own), so that
		// the settings, and the keys of every action calling the
		// endpoint, are what they were before the attribute existed.
		c.Retries = int(r)
	}
	f, err := jsonFile(ctx, ctx.Label().Name+".endpoint.json", c)
	if err != nil {
		return err
	}
	ctx.Target.Files = []*engine.File{f}
	provide(ctx.Target, endpointKey{}, &EndpointInfo{Config: f, APIKeyEnv: c.APIKeyEnv})
	return nil
}

// modelAction is a lego tool action that calls the endpoint: it may use
// the network and gets the API key from lego's environment.
func modelAction(ep *EndpointInfo, tool *legotool.Tool, inputs, outputs []*engine.File, args ...string) (*engine.Action, error) {
	a, err := legotool.Action(tool, nil, append([]*engine.File{ep.Config}, inputs...), outputs,
		append([]string{"--endpoint", ep.Config.Path}, args...)...)
	if err != nil {
		return nil, err
	}
	a.Network = true
	if ep.APIKeyEnv != "" {
		a.SecretEnv = []string{ep.APIKeyEnv}
	}
	return a, nil
}
