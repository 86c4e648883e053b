#!/usr/bin/env bash
# Builds the release binaries of another commit beside this checkout, for benchmarks that compare two versions side
# by side (`make bench` compares the Todos tools made from docs/openapi.yaml with the hand-written ones of the commit
# before issue 19). Usage: scripts/build-baseline.sh COMMIT; prints the folder holding the binaries.
#
# The commit is checked out into .build-baseline/<commit>/src (a git worktree, so nothing of this checkout changes)
# and built there with its own scratch folder: the first build takes as long as a clean release build, later ones
# reuse it.
set -euo pipefail
commit=$(git rev-parse --short "${1:?usage: scripts/build-baseline.sh COMMIT}")
root=$(git rev-parse --show-toplevel)
folder="$root/.build-baseline/$commit"
if [ ! -d "$folder/src" ]; then
    mkdir -p "$folder"
    git -C "$root" worktree add --detach "$folder/src" "$commit" >&2
fi
cd "$folder/src"
swift build -c release --scratch-path "$folder/build" --product McpGateway >&2
swift build -c release --scratch-path "$folder/build" --product TodosAPI >&2
swift build -c release --scratch-path "$folder/build" --product DevIdP >&2
swift build -c release --scratch-path "$folder/build" --show-bin-path
