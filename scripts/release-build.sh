#!/usr/bin/env bash
# The release build of the three services: what `make bench` measures and the container image ships
# (deploy/docker/Dockerfile). Prints the folder of the binaries.
#
#   scripts/release-build.sh                  build TodosAPI, DevIdP and McpGateway
#   scripts/release-build.sh --show-bin-path  only print the folder
#
# - The Swift runtime and Foundation are linked in (--static-swift-stdlib): the binaries need no Swift toolchain.
# - Every function gets a section of its own (-function-sections, -ffunction-sections), and lld lays the code the
#   gateway runs out first, in the order it first ran when deploy/McpGateway.ld was recorded (`make order-file`).
#   Linux maps a binary's code 64 KiB (or a whole cached folio) at a time around each page fault, so in the compiler's
#   order, where the 4-5 MiB the gateway runs are spread over 36, most of its code stayed resident (docs/benchmarks.md,
#   issue 20).
# - Static linking also spares each call into the Swift runtime (retain, release, allocation) its jump through the
#   procedure linkage table: a tool call costs the gateway and TodosAPI about a quarter less CPU time.
#
# Its own build folder (.build-release): the compiler does not build a module's objects again when only flags like
# these change, so a folder built without them would keep objects without function sections.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch="${RELEASE_SCRATCH:-.build-release}"
order="$PWD/deploy/McpGateway.ld"
flags=(
    -c release --scratch-path "$scratch" --static-swift-stdlib
    -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections
    -Xswiftc -use-ld=lld -Xlinker -T -Xlinker "$order"
)
# RELEASE_LINK_MAP=1: lld also writes where every section went to $scratch/McpGateway.map (the gateway links last),
# which scripts/function-order/record.py reads.
if [[ -n "${RELEASE_LINK_MAP:-}" ]]; then
    flags+=(-Xlinker "-Map=$PWD/$scratch/McpGateway.map")
fi
bin="$(swift build "${flags[@]}" --show-bin-path)"
if [[ "${1:-}" == --show-bin-path ]]; then
    echo "$bin"
    exit 0
fi
# SwiftPM links again when an input it knows of changes; the linker script is not one.
if [[ -e "$bin/McpGateway" && "$order" -nt "$bin/McpGateway" ]]; then
    rm -f "$bin/McpGateway"
fi
for product in TodosAPI DevIdP McpGateway; do
    swift build "${flags[@]}" --product "$product" >&2
done
echo "$bin"
