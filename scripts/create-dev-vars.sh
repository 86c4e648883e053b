#!/usr/bin/env bash
# Creates .dev.vars from .dev.vars.example, replacing every __RANDOM__ with a fresh 256-bit secret. Never overwrites
# an existing .dev.vars.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -f .dev.vars ] && exit 0
random() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
umask 077
while IFS= read -r line || [ -n "$line" ]; do
    while [[ "$line" == *__RANDOM__* ]]; do line="${line/__RANDOM__/$(random)}"; done
    printf '%s\n' "$line"
done < .dev.vars.example > .dev.vars
echo "Created .dev.vars with fresh secrets (edit it to use a real Auth0 tenant; see docs/configuration.md)."
