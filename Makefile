# Every build and test links lazily: a binary that links go-nvml must start
# on a machine with no NVIDIA driver (see DESIGN.md, pitfalls).
LDFLAGS := -ldflags=-extldflags=-Wl,-z,lazy
GO ?= go
# go-nvml's cgo prolog calls functions NVML marks deprecated.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations

.PHONY: build test vet deadcode docs bench bench-peers corrupt example clean fuzz fuzz-short

build:
	$(GO) build $(LDFLAGS) -o bin/lego ./cmd/lego

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	@$(MAKE) -s deadcode

# Code no command reaches: none allowed. internal/testenv is the tests'
# setup (containerd, bazel-remote, Buildbarn), which only tests import.
deadcode:
	@out=$$($(GO) run golang.org/x/tools/cmd/deadcode@v0.52.0 -filter '^github.com/legobuild/lego/(bench|cas|cmd|engine|executors|rules|starlark)' ./...) || exit 1; \
	test -z "$$out" || { echo "$$out"; echo "deadcode: code reachable only from tests"; exit 1; }

# docs/rules.md is generated from the rules' declarations (the same text
# as `lego help rules --markdown` and `lego build //:rules_md`); a test in
# ./starlark fails when it is stale.
docs:
	$(GO) test $(LDFLAGS) -count=1 -run '^TestRulesMarkdownCurrent$$' ./starlark -update

# cmd/lego runs about 17 minutes on 2 cores (the example's pipeline end to
# end in containerd); the timeout is a guard against a hang, with room for
# a loaded machine.
test: vet
	$(GO) test $(LDFLAGS) -count=1 -timeout 40m ./...

# Go native fuzzing, one target at a time (go test fuzzes one per run;
# scripts/fuzz.sh says when a run failed):
# PACKAGE:FuzzName. Their seed corpora (f.Add and testdata/fuzz/) run as
# tests in `make test`. A failure writes its input to testdata/fuzz/.
FUZZ_TARGETS := \
	engine:FuzzParseLabel engine:FuzzParsePattern \
	starlark:FuzzLoadBUILD starlark:FuzzParseRC \
	rules/swe/format:FuzzDecodeTrajectory rules/swe/mask:FuzzDataPlaneAgrees \
	rules/swe/format:FuzzMapLines rules/swe/format:FuzzCompact
FUZZTIME ?= 5m
# Minimizing an input the fuzzer found interesting runs up to a minute by
# default; a short run would spend all its time there.
FUZZMINIMIZETIME ?= 5s

fuzz:
	GO=$(GO) ./scripts/fuzz.sh $(FUZZTIME) $(FUZZMINIMIZETIME) $(FUZZ_TARGETS)

# What CI runs: each target for a short fixed time.
fuzz-short:
	@$(MAKE) -s fuzz FUZZTIME=10s FUZZMINIMIZETIME=2s

# Benchmarks, not tests: first, null, touched and changed builds (wall
# time, peak RSS; the changed build checked to run only what it must) on
# generated chains, then the Go benchmark functions.
bench: build
	$(GO) run $(LDFLAGS) ./bench -lego bin/lego -shape chain -n $${BENCH_SIZES:-1000,10000}
	# 100k: built unsandboxed, since its first build takes an hour in the
	# namespace sandbox on 2 cores; the null and touch builds run nothing
	# either way, the change build the 3 actions it must
	$(GO) run $(LDFLAGS) ./bench -lego bin/lego -shape chain -sandbox none -first 0 -n $${BENCH_BIG:-100000}
	$(GO) run ./bench -lego bin/lego -swe_envs 3000 -swe_tasks 32000
	$(GO) run ./bench -lego bin/lego -rebench_repos 3000 -rebench_instances 20000
	# the example's images, if it was built (make example): store sharing
	-[ -d examples/swe-lego/lego-out ] && $(GO) run ./bench -image_sharing examples/swe-lego/lego-out
	$(GO) test $(LDFLAGS) -run '^$$' -bench . -benchtime 2s ./cas/... ./engine/... ./executors/local/...
	# the data plane on about 1 GB each of lego-shaped and real-shaped (openhands, sweagent, chatml) trajectories
	$(GO) test $(LDFLAGS) -run '^$$' -bench DataPlane -benchtime 3x ./rules/swe/
	# GPU scheduling: 200 mixed jobs on 8 mock GPUs, simulated
	$(GO) test $(LDFLAGS) -run '^$$' -bench Schedule200 -benchtime 20x ./executors/gpu/
	# containerd overhead beside local, median of 50 (needs containerd: the
	# tests' setup starts one when LEGO_TEST_CONTAINERD is not set)
	$(GO) test $(LDFLAGS) -run '^$$' -bench TrueOverhead -benchtime 50x ./executors/containerd/
	# an agent's turn: a command exec'd into a running session container,
	# beside a new container per command (median of 50)
	$(GO) test $(LDFLAGS) -run '^$$' -bench SessionExec -benchtime 50x ./executors/containerd/
	# 1,000 remote cache hits from bazel-remote on loopback, beside local
	# hits and local runs of the same actions (the benchmark starts it)
	$(GO) test $(LDFLAGS) -run '^$$' -bench RemoteCacheHit -benchtime 5x ./cmd/lego/
	# whole scripted rollouts (loop, then the tests afresh) on directory sessions
	$(GO) test $(LDFLAGS) -run '^$$' -bench ScriptedRollout -benchtime 20x ./rules/swe/agent/

# The same chains through Bazel beside lego (first, warm and cold null
# builds, the ratios), when bazel is on PATH (Debian: bazel-bootstrap).
bench-peers: build
	$(GO) run $(LDFLAGS) ./bench -lego bin/lego -peers bazel -shape chain -n $${BENCH_SIZES:-1000,10000}

# An experiment, not a test: 60 trials of damage to a cache (in-place and
# replaced same-size flips, truncations, appends, deletions, action-cache
# damage), each rebuilt and its outputs compared with a clean build's. It
# fails when any trial served bad bytes.
corrupt: build
	python3 scripts/corrupt_experiment.py --lego bin/lego --trials $${TRIALS:-60}

example: build
	cd examples/basics && ../../bin/lego build //...

clean:
	rm -rf bin
