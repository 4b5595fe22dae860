#!/usr/bin/env bash
# Runs every test of lego: installs what is missing, then `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
make test
