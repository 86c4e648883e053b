#!/usr/bin/env bash
# The release build of the three services: what `make bench` measures and the container image ships
# (deploy/docker/Dockerfile). Prints the folder of the binaries.
#
#   scripts/release-build.sh                  build TodosAPI, DevIdP and McpGateway
#   scripts/release-build.sh --show-bin-path  only print the folder
#
# - The Swift runtime and Foundation are linked in (--static-swift-stdlib): the binaries need no Swift toolchain.
# - Every function gets a section of its own (-function-sections, -ffunction-sections), and lld lays the gateway's
#   functions out in the order they first ran when deploy/McpGateway.order was recorded (`make order-file`). Linux maps
#   a binary's code 64 KiB (or a whole cached folio) at a time around each page fault, so code in the compiler's order,
#   where the 4.4 MiB the gateway runs are spread over 36, kept most of it resident; laid out in order, the code it runs
#   is mostly together (docs/benchmarks.md, issue 20).
# - Static linking also spares each call into the Swift runtime (retain, release, allocation) its jump through the
#   procedure linkage table: a tool call costs the gateway and TodosAPI about a quarter less CPU time.
#
# Its own build folder (.build-release): the compiler does not build a module's objects again when only flags like
# these change, so a folder built without them would keep objects without function sections.
set -euo pipefail
cd "$(dirname "$0")/.."

order="$PWD/deploy/McpGateway.order"
flags=(
    -c release --scratch-path "${RELEASE_SCRATCH:-.build-release}" --static-swift-stdlib
    -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections
    -Xswiftc -use-ld=lld
    -Xlinker "--symbol-ordering-file=$order" -Xlinker --no-warn-symbol-ordering
)
bin="$(swift build "${flags[@]}" --show-bin-path)"
if [[ "${1:-}" == --show-bin-path ]]; then
    echo "$bin"
    exit 0
fi
# SwiftPM links again when an input it knows of changes; the order file is not one.
if [[ -e "$bin/McpGateway" && "$order" -nt "$bin/McpGateway" ]]; then
    rm -f "$bin/McpGateway"
fi
for product in TodosAPI DevIdP McpGateway; do
    swift build "${flags[@]}" --product "$product" >&2
done
echo "$bin"
