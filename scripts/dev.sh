#!/usr/bin/env bash
# Runs the services of `make dev` side by side, each line prefixed with the service's name in colour. Ctrl-C stops
# them all; if one exits, the others are stopped too.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN="${BIN_PATH:-.build/debug}"
setting() {  # the value of a setting: environment first, then .dev.vars
    local name=$1 default=${2:-}
    if [ -n "${!name:-}" ]; then echo "${!name}"; return; fi
    local line
    line=$(grep -E "^(export )?${name}=" .dev.vars 2>/dev/null | tail -1 | sed -E "s/^(export )?${name}=//; s/^[\"']//; s/[\"']$//")
    echo "${line:-$default}"
}

domain=$(setting AUTH0_DOMAIN http://localhost:8790)
todos_port=8789
gateway_url=$(setting PUBLIC_URL http://localhost:8788)
gateway_port=$(echo "$gateway_url" | sed -nE 's#^https?://[^/:]+:([0-9]+).*#\1#p')
gateway_port=${gateway_port:-8788}
devidp_port=$(setting DEVIDP_PORT 8790)
local_idp=false
case "$domain" in
    http://localhost:$devidp_port*|http://127.0.0.1:$devidp_port*|localhost:$devidp_port*) local_idp=true ;;
esac

pids=()
stop_all() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
}
trap 'echo; echo "Stopping…"; stop_all; exit 0' INT TERM
trap stop_all EXIT

start() {  # start NAME COLOUR COMMAND…
    local name=$1 colour=$2; shift 2
    local prefix
    prefix=$(printf '\033[%sm%-9s\033[0m| ' "$colour" "$name")
    "$@" > >(sed -u "s/^/$prefix/") 2>&1 &
    pids+=($!)
}

wait_until_up() {  # wait_until_up NAME URL
    for _ in $(seq 1 150); do
        if curl -fsS -o /dev/null "$2" 2>/dev/null; then return 0; fi
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null || { echo "$1 exited during start-up; see its output above." >&2; exit 1; }
        done
        sleep 0.2
    done
    echo "$1 did not answer at $2 within 30 s." >&2
    exit 1
}

if $local_idp; then
    start DevIdP "35" "$BIN/DevIdP" serve --port "$devidp_port"
    wait_until_up DevIdP "http://127.0.0.1:$devidp_port/health"
fi
start TodosAPI "36" "$BIN/TodosAPI" --port "$todos_port"
wait_until_up TodosAPI "http://127.0.0.1:$todos_port/api/health"
if $local_idp && [ -z "$(setting IDP_NAME)" ]; then export IDP_NAME="DevIdP (development)"; fi
start Gateway "33" "$BIN/McpGateway" --port "$gateway_port"
wait_until_up Gateway "http://127.0.0.1:$gateway_port/health"

bold=$'\033[1m'; reset=$'\033[0m'
echo
echo "${bold}Ready.${reset}"
$local_idp && echo "  DevIdP     http://localhost:$devidp_port/  (demo users: alice / alice-password, bob / bob-password; development only)"
$local_idp || echo "  Identity   $domain"
echo "  TodosAPI   http://localhost:$todos_port/api/health"
echo "  Gateway    $gateway_url/mcp   (connect MCP Inspector, Claude or an SDK here; older clients: $gateway_url/sse)"
echo
echo "Connect an MCP client:  npx @modelcontextprotocol/inspector  (Streamable HTTP, $gateway_url/mcp)"
echo "Try, in another terminal:"
echo "  curl -H \"Authorization: Bearer \$(make -s token)\" http://localhost:$todos_port/api/me"
echo "  curl -H \"Authorization: Bearer \$(make -s token USER=bob SCOPE=read:todos)\" http://localhost:$todos_port/api/billing"
echo "Press Ctrl-C to stop."
echo
wait -n "${pids[@]}"
echo "A service stopped; stopping the others." >&2
exit 1
