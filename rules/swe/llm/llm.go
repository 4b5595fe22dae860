// Package llm is lego's client for OpenAI-compatible chat completions, the
// protocol vLLM, SGLang and hosted APIs all speak: messages, tools
// (function calling), sampling settings. It retries 429 and 5xx answers
// with backoff, caps the requests in flight and bounds each by a timeout.
// The API key is read from the environment when a request is made and is
// kept out of errors and logs. An endpoint that fails every try gives an
// executors.InfraError of class endpoint: no answer is not a result.
package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/legobuild/lego/executors"
)

// Config is a model endpoint, as the model_endpoint rule writes it. It
// holds no secret: the key is named by APIKeyEnv.
type Config struct {
	BaseURL        string   `json:"base_url"` // e.g. http://host:8000/v1
	Model          string   `json:"model"`
	APIKeyEnv      string   `json:"api_key_env,omitempty"`
	Temperature    *float64 `json:"temperature,omitempty"`
	TopP           *float64 `json:"top_p,omitempty"`
	MaxTokens      int      `json:"max_tokens,omitempty"`
	MaxConcurrency int      `json:"max_concurrency,omitempty"` // requests in flight; 0 = 1
	TimeoutSeconds int      `json:"timeout_seconds,omitempty"` // per request; 0 = 600
	Retries        int      `json:"retries,omitempty"`         // after the first try; 0 = DefaultRetries
}

// DefaultRetries is how many times a request is tried again after the
// first when Config names no number.
const DefaultRetries = 5

// ReadConfig reads a Config file.
func ReadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if c.BaseURL == "" || c.Model == "" {
		return nil, fmt.Errorf("%s: base_url and model are required", path)
	}
	return &c, nil
}

// Message is a chat message.
type Message struct {
	Role       string     `json:"role"` // system, user, assistant, tool
	Content    string     `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Name       string     `json:"name,omitempty"`
}

// ToolCall is a function call the model asked for.
type ToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"` // function
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"` // JSON text, as the model wrote it
	} `json:"function"`
}

// Tool is a function the model may call.
type Tool struct {
	Type     string `json:"type"` // function
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type request struct {
	Model       string    `json:"model"`
	Messages    []Message `json:"messages"`
	Tools       []Tool    `json:"tools,omitempty"`
	Temperature *float64  `json:"temperature,omitempty"`
	TopP        *float64  `json:"top_p,omitempty"`
	MaxTokens   int       `json:"max_tokens,omitempty"`
	Seed        *int64    `json:"seed,omitempty"`
	// Next-token log-probabilities (OpenAI's), and vLLM's way to have the
	// model continue a final assistant message instead of answering it.
	Logprobs             bool  `json:"logprobs,omitempty"`
	TopLogprobs          int   `json:"top_logprobs,omitempty"`
	AddGenerationPrompt  *bool `json:"add_generation_prompt,omitempty"`
	ContinueFinalMessage bool  `json:"continue_final_message,omitempty"`
}

// Response is the first choice of a completion.
type Response struct {
	Message      Message
	FinishReason string
	// TopLogprobs are the most likely first tokens and their
	// log-probabilities, when asked for.
	TopLogprobs map[string]float64
	Usage       struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	}
}

// Client talks to one endpoint. It is safe for concurrent use.
type Client struct {
	cfg   Config
	key   string
	http  *http.Client
	slots chan struct{}
	// Sleep waits between retries; tests make it instant.
	Sleep func(context.Context, time.Duration) error
}

// New makes a client; the API key is read now from cfg.APIKeyEnv, which
// must be set if named.
func New(cfg Config) (*Client, error) {
	c := &Client{cfg: cfg, http: &http.Client{}, Sleep: sleep}
	if cfg.APIKeyEnv != "" {
		k, ok := os.LookupEnv(cfg.APIKeyEnv)
		if !ok || k == "" {
			return nil, fmt.Errorf("the API key variable %s is not set", cfg.APIKeyEnv)
		}
		c.key = k
	}
	n := cfg.MaxConcurrency
	if n <= 0 {
		n = 1
	}
	c.slots = make(chan struct{}, n)
	return c, nil
}

// Open makes a client from a Config file, for a tool that calls the
// endpoint. The client holds the key then, and Open removes the variable
// from this process's environment: the commands the tool runs (an
// agent's) must not find it there.
func Open(path string) (*Client, error) {
	cfg, err := ReadConfig(path)
	if err != nil {
		return nil, err
	}
	c, err := New(*cfg)
	if err != nil {
		return nil, err
	}
	if cfg.APIKeyEnv != "" {
		os.Unsetenv(cfg.APIKeyEnv)
	}
	return c, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StatusError is an answer other than 200.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("model endpoint answered %d: %s", e.Code, e.Body)
}

func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code == http.StatusTooManyRequests || se.Code >= 500
	}
	// Transport errors and timeouts of one try.
	return !errors.Is(err, context.Canceled)
}

// Chat asks for one completion of messages; seed, when not nil, is sent
// for endpoints that sample reproducibly with it.
func (c *Client) Chat(ctx context.Context, messages []Message, tools []Tool, seed *int64) (*Response, error) {
	return c.post(ctx, request{Model: c.cfg.Model, Messages: messages, Tools: tools,
		Temperature: c.cfg.Temperature, TopP: c.cfg.TopP, MaxTokens: c.cfg.MaxTokens, Seed: seed})
}

// NextTokens continues the final message of messages (an assistant
// message the model is to go on with) by one token, greedily, and returns
// the top n candidates for it with their log-probabilities. The server
// must support vLLM's continue_final_message (vLLM, SGLang do).
func (c *Client) NextTokens(ctx context.Context, messages []Message, n int) (map[string]float64, error) {
	no := false
	zero := 0.0
	r, err := c.post(ctx, request{Model: c.cfg.Model, Messages: messages, Temperature: &zero, MaxTokens: 1,
		Logprobs: true, TopLogprobs: n, AddGenerationPrompt: &no, ContinueFinalMessage: true})
	if err != nil {
		return nil, err
	}
	if len(r.TopLogprobs) == 0 {
		return nil, fmt.Errorf("model endpoint %s: no logprobs in the answer (does it support top_logprobs?)", c.cfg.BaseURL)
	}
	return r.TopLogprobs, nil
}

func (c *Client) post(ctx context.Context, r request) (*Response, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.slots }()
	retries := c.cfg.Retries
	if retries <= 0 {
		retries = DefaultRetries
	}
	wait := time.Second
	for try := 0; ; try++ {
		resp, after, err := c.once(ctx, body)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return nil, err
		}
		if try == retries {
			// No answer is no result: the action fails as the
			// endpoint's, and the next build asks again.
			return nil, executors.Infra(executors.ClassEndpoint, fmt.Errorf("%w (%d tries)", err, try+1))
		}
		if after <= 0 {
			after = wait
			wait = min(2*wait, time.Minute)
		}
		if err := c.Sleep(ctx, after); err != nil {
			return nil, err
		}
	}
}

// once makes one request; after is the server's Retry-After.
func (c *Client) once(ctx context.Context, body []byte) (*Response, time.Duration, error) {
	timeout := time.Duration(c.cfg.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := strings.TrimSuffix(c.cfg.BaseURL, "/") + "/chat/completions"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("model endpoint %s: %w", url, unwrapURL(err))
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, 0, err
	}
	if res.StatusCode != http.StatusOK {
		after, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		return nil, time.Duration(after) * time.Second, &StatusError{Code: res.StatusCode, Body: c.scrub(truncate(strings.TrimSpace(string(b)), 300))}
	}
	var out struct {
		Choices []struct {
			Message      Message `json:"message"`
			FinishReason string  `json:"finish_reason"`
			Logprobs     *struct {
				Content []struct {
					TopLogprobs []struct {
						Token   string  `json:"token"`
						Logprob float64 `json:"logprob"`
					} `json:"top_logprobs"`
				} `json:"content"`
			} `json:"logprobs"`
		} `json:"choices"`
		Usage json.RawMessage `json:"usage"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, 0, fmt.Errorf("model endpoint %s: not a chat completion: %v", url, err)
	}
	if len(out.Choices) == 0 {
		return nil, 0, fmt.Errorf("model endpoint %s: no choices in the answer", url)
	}
	r := &Response{Message: out.Choices[0].Message, FinishReason: out.Choices[0].FinishReason}
	if lp := out.Choices[0].Logprobs; lp != nil && len(lp.Content) > 0 {
		r.TopLogprobs = map[string]float64{}
		for _, t := range lp.Content[0].TopLogprobs {
			r.TopLogprobs[t.Token] = t.Logprob
		}
	}
	if len(out.Usage) > 0 {
		_ = json.Unmarshal(out.Usage, &r.Usage) // usage is informative only
	}
	return r, 0, nil
}

// scrub keeps the key out of error text that echoes the request.
func (c *Client) scrub(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, "[API key]")
}

// unwrapURL drops net/http's "Post URL:" prefix; the URL is said once.
func unwrapURL(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok && strings.HasPrefix(err.Error(), "Post ") {
		return u.Unwrap()
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
