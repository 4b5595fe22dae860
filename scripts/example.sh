#!/usr/bin/env bash
# The main job: builds lego and the example workspaces, offline (no model
# endpoint; Debian's mirror for the base image), on the embedded defaults:
# examples/basics, then the SWE-Lego example's //paper:table1: task sets,
# teacher rollouts (scripted policy), masked data and curriculum,
# torch_tiny checkpoints, the verifier, the evaluations and the table and
# figures; and //tasks:rebench, SWE-rebench-shaped instances in envs made
# from their install_config. Tests and agents run in containerd (started on a private
# socket, stopped after).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
make build
(cd examples/basics && ../../bin/lego build //... "$@")
. scripts/containerd.sh
cd examples/swe-lego
../../bin/lego build //paper:table1 //tasks:synthetic //tasks:real //tasks:rebench //rollouts:teacher --containerd_address="$LEGO_CONTAINERD" "$@"
for set in synthetic real rebench; do
  echo "tasks: examples/swe-lego/lego-out/tasks/$set/tasks.jsonl ($(wc -l < lego-out/tasks/$set/tasks.jsonl) validated), report.json beside it"
done
echo "rollouts: examples/swe-lego/lego-out/rollouts/teacher/trajectories.jsonl ($(wc -l < lego-out/rollouts/teacher/trajectories.jsonl)), report.json beside it"
echo "table 1 (examples/swe-lego/lego-out/paper/ablation.md; figures: ablation_bars, tts_curve, turns_vs_resolve .png/.svg):"
cat lego-out/paper/ablation.md
