#!/usr/bin/env bash
# Installs what lego's build and tests need on a fresh Debian machine (run
# as root): a Go toolchain new enough for go.mod, bash, coreutils, make, git,
# Python 3 with pytest and pip (directory envs run tests on the host) and PyTorch
# (python3-torch, for the torch_tiny trainer).
# Sourced by the other scripts so that PATH is set for them.
set -euo pipefail

need_apt=()
for tool in make git gcc; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
[ -d /usr/local/go/bin ] && export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
# The Debian interpreter, which the local executor's PATH finds.
/usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || need_apt+=(python3 python3-pytest)
# pip, setuptools and wheel: directory envs made from install_config
# install their repository with pip (offline: --no-index).
/usr/bin/python3 -c 'import pip, setuptools, wheel' >/dev/null 2>&1 || need_apt+=(python3-pip)
# PyTorch for the torch_tiny trainer (the offline SFT and verifier backend).
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || need_apt+=(python3-torch)
# PyYAML: a test reads the LLaMA-Factory YAML lego writes as LLaMA-Factory does.
/usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || need_apt+=(python3-yaml)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing ${need_apt[*]}; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
export PATH="$(go env GOPATH 2>/dev/null || echo /root/go)/bin:$PATH"
# An older go (1.21+) fetches the toolchain go.mod asks for from the module proxy.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
go version >/dev/null
# go-nvml's cgo prolog calls functions NVML marks deprecated: quiet.
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g -Wno-deprecated-declarations}"
