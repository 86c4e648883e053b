#!/usr/bin/env bash
# Installs the Debian packages the Swift build needs, if any is missing: as root directly, else with passwordless
# sudo, else prints the exact command to run.
set -euo pipefail

packages=(libsqlite3-dev libssl-dev libcurl4-openssl-dev "$@")
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
echo "Installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    sh -c "$command"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo sh -c "$command"
else
    echo "Missing Debian packages: ${missing[*]}. Install them with:" >&2
    echo "    sudo sh -c '$command'" >&2
    exit 1
fi
