package swe

// Doc methods: the paragraph `lego help RULE` and docs/rules.md show,
// one per stage of the SWE-Lego recipe (DESIGN.md's table).

func (GitRepo) Doc() string {
	return "A repository's source snapshot, content-addressed: the files under a path of the workspace (no history), " +
		"or a commit of a repository fetched from a url or a bundle file (the commit id pins the content, so the fetch is cached)."
}

func (Env) Doc() string {
	return "A sandbox for one repository: an OCI image with the source at workdir and the install steps run in containers, " +
		"one layer each (form = \"image\"), or a directory env run on the host's python3 (form = \"dir\")."
}

func (EnvSet) Doc() string {
	return "The envs of an instances file (SWE-rebench's, with install_config), one per repository, environment_setup_commit and " +
		"dependency configuration, built in SWE-rebench's order: the Python environment, the requirements, pip_packages. A " +
		"task_set's instances add the repository at the base commit, pre_install and install. A step that fails drops the " +
		"instances of that env, with its output in the task set's report, and stops nothing else. Identical steps share layers."
}

func (TaskSet) Doc() string {
	return "Validated task instances (SWE-bench schema). \"real\": pull requests validated in their envs (swe_env targets, or the " +
		"swe_env_set of the instances), each given a git history of its base commit's ancestry only, running the test files " +
		"test_patch touches; an instance that cannot be validated is dropped with its reason in report.json. \"synthetic\": bugs injected into each env's repository (AST modifiers, LLM rewrite), " +
		"kept when some test fails with the bug and passes without it. \"merge\": joins task sets. Each test run is its own action."
}

func (ModelEndpoint) Doc() string {
	return "An OpenAI-compatible chat completions endpoint (vLLM, SGLang, a hosted API) that rollouts, LLM rewrite and verifiers call. " +
		"The API key is read from the environment when an action runs and never stored."
}

func (ScriptedPolicy) Doc() string {
	return "The offline stand-in for a teacher model, for the example and CI only: no model, it knows the gold patch, " +
		"explores with real tool calls, makes seeded missteps (failing commands, edits it undoes) and applies the patch through the editor."
}

func (Rollout) Doc() string {
	return "Expert trajectories: a policy run as an OpenHands-style agent on every task of some task sets, n samples each, " +
		"one action per (task, sample). The output directory holds trajectories.jsonl and report.json (resolved / semi-resolved status)."
}

func (Filter) Doc() string {
	return "Filters trajectories: keeps the resolved ones and recycles the semi-resolved (right files located, wrong fix), dropping long ones."
}

func (Masked) Doc() string {
	return "Step-level error masking: an SFT dataset (LLaMA-Factory messages) whose assistant turns get turn_mask = true (no loss) " +
		"when their tool result matches an error pattern, except errors from reproducing the bug or running tests."
}

func (Curriculum) Doc() string {
	return "Curriculum stages: bins a masked_dataset by turn count (easy 0–50, medium 50–70, hard 70–100 by default); " +
		"stage k holds bins 1..k when cumulative. One dataset per stage."
}

func (SFTCheckpoint) Doc() string {
	return "Full-parameter SFT of base_model (or of init, the previous curriculum stage) on a masked_dataset or one stage of a curriculum: " +
		"LLaMA-Factory on GPUs (the paper's 4 epochs, global batch 64, lr 1e-4 for 8B) or torch_tiny on CPU. A checkpoint directory in the CAS."
}

func (Verifier) Doc() string {
	return "A model trained to judge whether a trajectory resolved its task, on rollouts of both outcomes. Generative: it writes yes or no " +
		"after the judgement marker, score = P(yes) from the two logits; regressive (torch_tiny): a scoring head."
}

func (VerifierEval) Doc() string {
	return "Evaluation: k rollouts per task with the policy, each scored by the verifier; Pass@1, TTS@k (the top-scored rollout's resolution) " +
		"and Best@k (any resolved), per instance and in total."
}

func (PaperTable) Doc() string {
	return "A paper table: <name>.md and <name>.csv, one row per evaluation, in the order of rows."
}

func (PaperFigure) Doc() string {
	return "A paper figure: <name>.svg and <name>.png, one series per evaluation (a TTS curve, turns against resolve rate, or an ablation)."
}
