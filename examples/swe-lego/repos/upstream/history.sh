#!/bin/bash
# Makes the upstream history of an example repository, as a git bundle:
# what a real task's git_repo fetches. The dates and the author are fixed,
# so the commit ids are the same on every machine and can be pinned in
# BUILD files and in tasks/prs.jsonl.
#
#   history.sh SRC_DIR PR_DIR OUT.bundle
#
# SRC_DIR is the repository at the pull request's base; PR_DIR holds the
# pull request (fix.diff and test.diff, merged after created_at
# 2026-02-10) and its title.
set -euo pipefail
src=$(realpath "$1") pr=$(realpath "$2") out=$(realpath -m "$3")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME=$work GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null TZ=UTC LC_ALL=C
export GIT_AUTHOR_NAME="Example Maintainer" GIT_AUTHOR_EMAIL=maintainer@example.com
export GIT_COMMITTER_NAME="Example Maintainer" GIT_COMMITTER_EMAIL=maintainer@example.com
at() { export GIT_AUTHOR_DATE="$1" GIT_COMMITTER_DATE="$1"; }
cp -rL "$src" "$work/repo"
cp "$pr"/*.diff "$work/"
cd "$work/repo"
git init -q -b main --template= .
git add -A
at 2026-01-05T10:00:00Z; git commit -q -m "Initial import"
git tag v0.1
echo "$(basename "$src"): an example project of lego's SWE-Lego pipeline." > README.md
git add README.md
at 2026-02-01T10:00:00Z; git commit -q -m "Add a README"   # the base commit
git apply ../fix.diff ../test.diff
git add -A
at 2026-02-12T10:00:00Z; git commit -q -F "$pr/title"
git tag -a -m "Release 0.2" v0.2
git checkout -q -b later
echo "See the tests for examples." >> README.md
at 2026-03-01T10:00:00Z; git commit -q -a -m "Point to the tests"
git checkout -q main
git bundle create -q "$out" --all
