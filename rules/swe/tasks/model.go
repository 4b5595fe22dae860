package tasks

import (
	"context"
	"fmt"
	"strings"

	"github.com/legobuild/lego/rules/swe/llm"
)

// The model's two parts in a synthetic task set: llm_rewrite candidates
// and problem statements. Each opens the client (open) only when it calls
// the model.

// RewriteSite has the model write the body of site i of sites again and
// returns the candidate; an empty one, saying why, when there is no site
// i. The seed of the call is the sites' seed and i.
func RewriteSite(ctx context.Context, sites *Sites, i int, open func() (*llm.Client, error)) (Candidate, error) {
	if i >= len(sites.Sites) {
		return Candidate{Empty: true, Reason: fmt.Sprintf("the repository has %d functions with a docstring to rewrite", len(sites.Sites))}, nil
	}
	client, err := open()
	if err != nil {
		return Candidate{}, err
	}
	s := sites.Sites[i]
	seed := sites.Seed*1000 + int64(i)
	r, err := client.Chat(ctx, RewritePrompt(s), nil, &seed)
	if err != nil {
		return Candidate{}, fmt.Errorf("rewriting %s in %s: %w", s.Function, s.File, err)
	}
	return ApplyRewrite(sites.Repo, sites.Seed, s, r.Message.Content), nil
}

// WriteIssue has the model write the problem statement of candidate c,
// given its run (res) and the clean run (base), when its tests keep it;
// for a candidate they reject, or an empty one, the issue says why it was
// skipped.
func WriteIssue(ctx context.Context, c Candidate, res, base Results, open func() (*llm.Client, error)) (Issue, error) {
	issue := Issue{}
	f2p, _, why := Judge(base.Runs["clean"], res.Runs["bug"])
	switch {
	case c.Empty || res.Empty:
		issue.Skipped = "empty candidate"
	case why != "":
		issue.Skipped = why
	default:
		client, err := open()
		if err != nil {
			return Issue{}, err
		}
		r, err := client.Chat(ctx, IssuePrompt(c, f2p, res.Runs["bug"]), nil, &c.Seed)
		if err != nil {
			return Issue{}, fmt.Errorf("writing the issue of %s: %w", c.InstanceID, err)
		}
		issue.ProblemStatement = strings.TrimSpace(r.Message.Content) + "\n"
	}
	return issue, nil
}
