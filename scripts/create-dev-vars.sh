#!/usr/bin/env bash
# Creates .dev.vars from .dev.vars.example, replacing every __RANDOM__ with a fresh 256-bit secret. An existing
# .dev.vars is never overwritten; secrets added to the example since it was created are appended to it.
set -euo pipefail
cd "$(dirname "$0")/.."

random() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
umask 077

if [ ! -f .dev.vars ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        while [[ "$line" == *__RANDOM__* ]]; do line="${line/__RANDOM__/$(random)}"; done
        printf '%s\n' "$line"
    done < .dev.vars.example > .dev.vars
    echo "Created .dev.vars with fresh secrets (edit it to use a real Auth0 tenant; see docs/configuration.md)."
    exit 0
fi

added=()
while IFS= read -r name; do
    grep -qE "^(export )?${name}=" .dev.vars || { printf '%s=%s\n' "$name" "$(random)" >> .dev.vars; added+=("$name"); }
done < <(sed -nE 's/^([A-Z0-9_]+)=__RANDOM__$/\1/p' .dev.vars.example)
[ ${#added[@]} -eq 0 ] || echo "Added new secrets to .dev.vars: ${added[*]}"
