package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/legobuild/lego/executors"
)

const key = "sk-test-4f1d"

// fake is an OpenAI-compatible server that checks each request and
// answers with status codes from script, then a completion.
type fake struct {
	t        *testing.T
	mu       sync.Mutex
	script   []int
	calls    int
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	hold     time.Duration
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(f.hold)
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		f.t.Errorf("%s %s; want POST /v1/chat/completions", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+key {
		f.t.Errorf("Authorization %q", got)
	}
	var req request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.t.Errorf("body: %v", err)
	}
	if req.Model != "qwen" || len(req.Messages) == 0 || req.Messages[0].Role != "system" || req.Temperature == nil || *req.Temperature != 0.5 {
		f.t.Errorf("request %+v", req)
	}
	f.mu.Lock()
	f.calls++
	var code int
	if len(f.script) > 0 {
		code, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	if code != 0 {
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"error": "no (you sent %s)"}`, r.Header.Get("Authorization"))
		return
	}
	fmt.Fprintf(w, `{"choices": [{"message": {"role": "assistant", "content": "echo: %s"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}`,
		req.Messages[len(req.Messages)-1].Content)
}

func client(t *testing.T, f *fake, conc int) (*Client, *[]time.Duration) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Setenv("LLM_TEST_KEY", key)
	temp := 0.5
	c, err := New(Config{BaseURL: srv.URL + "/v1/", Model: "qwen", APIKeyEnv: "LLM_TEST_KEY", Temperature: &temp, MaxConcurrency: conc, Retries: 3})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	c.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return c, &waits
}

var msgs = []Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hi"}}

func TestChatRetriesThenAnswers(t *testing.T) {
	f := &fake{t: t, script: []int{429, 503}}
	c, waits := client(t, f, 1)
	r, err := c.Chat(context.Background(), msgs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Message.Content != "echo: hi" || r.FinishReason != "stop" || r.Usage.CompletionTokens != 2 || f.calls != 3 {
		t.Errorf("response %+v after %d calls", r, f.calls)
	}
	// Retry-After is obeyed; without it, backoff starts at a second.
	if len(*waits) != 2 || (*waits)[0] != 7*time.Second || (*waits)[1] != time.Second {
		t.Errorf("waits %v", *waits)
	}
}

func TestChatGivesUpAndHidesTheKey(t *testing.T) {
	f := &fake{t: t, script: []int{500, 500, 500, 500, 500}}
	c, _ := client(t, f, 1)
	_, err := c.Chat(context.Background(), msgs, nil, nil)
	if err == nil || f.calls != 4 || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "(4 tries)") {
		t.Errorf("after %d calls: %v", f.calls, err)
	}
	// It is the endpoint's failure, not an answer.
	if c := executors.ClassOf(err); c != executors.ClassEndpoint {
		t.Errorf("class %q after the retries", c)
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("the error shows the key: %v", err)
	}
	// A client error is not retried.
	f = &fake{t: t, script: []int{400}}
	c, _ = client(t, f, 1)
	if _, err := c.Chat(context.Background(), msgs, nil, nil); err == nil || f.calls != 1 || executors.ClassOf(err) != executors.ClassAction {
		t.Errorf("400: %d calls, %v (class %s)", f.calls, err, executors.ClassOf(err))
	}
}

func TestChatConcurrencyCap(t *testing.T) {
	f := &fake{t: t, hold: 20 * time.Millisecond}
	c, _ := client(t, f, 2)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Chat(context.Background(), msgs, nil, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if m := f.maxSeen.Load(); m != 2 {
		t.Errorf("%d requests in flight at once; the cap is 2", m)
	}
}

func TestNewNeedsTheKey(t *testing.T) {
	t.Setenv("LLM_TEST_UNSET", "")
	if _, err := New(Config{BaseURL: "http://x/v1", Model: "m", APIKeyEnv: "LLM_TEST_UNSET"}); err == nil ||
		!strings.Contains(err.Error(), "LLM_TEST_UNSET is not set") {
		t.Errorf("unset key: %v", err)
	}
}

// NextTokens asks vLLM's way for the continuation of a final assistant
// message, greedily, with the top log-probabilities of its first token.
func TestNextTokens(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		msgs, _ := req["messages"].([]any)
		last, _ := msgs[len(msgs)-1].(map[string]any)
		if req["logprobs"] != true || req["top_logprobs"] != float64(20) || req["continue_final_message"] != true ||
			req["add_generation_prompt"] != false || req["max_tokens"] != float64(1) || req["temperature"] != float64(0) ||
			last["role"] != "assistant" || last["content"] != "<judgement>" {
			t.Errorf("request %v", req)
		}
		fmt.Fprint(w, `{"choices":[{"message":{"role":"assistant","content":"YES"},"finish_reason":"length",
			"logprobs":{"content":[{"token":"YES","logprob":-0.1,"top_logprobs":[{"token":"YES","logprob":-0.1},{"token":"NO","logprob":-2.4}]}]}}]}`)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL + "/v1", Model: "verifier"})
	if err != nil {
		t.Fatal(err)
	}
	top, err := c.NextTokens(context.Background(), []Message{{Role: "user", Content: "log"}, {Role: "assistant", Content: "<judgement>"}}, 20)
	if err != nil || top["YES"] != -0.1 || top["NO"] != -2.4 || len(top) != 2 {
		t.Fatalf("%v %v", top, err)
	}
}
