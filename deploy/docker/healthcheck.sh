#!/bin/bash
# healthcheck PORT PATH: exit 0 when http://127.0.0.1:PORT/PATH answers 200, 1 otherwise (refused, another status, or
# no status line within 3 seconds). The container HEALTHCHECK of every image runs it.
#
# The runtime image has no curl: one plain-http GET to loopback needs only bash's /dev/tcp, and installing curl would
# add libcurl and a dozen libraries (and their security updates) to every image for this one request.
set -u
port=${1:?usage: healthcheck PORT PATH}
path=${2:?usage: healthcheck PORT PATH}

exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUser-Agent: healthcheck\r\nConnection: close\r\n\r\n' \
    "$path" "$port" >&3 || exit 1
IFS= read -r -t 3 status <&3 || exit 1
exec 3<&-
# "HTTP/1.1 200 OK"
[[ $status =~ ^HTTP/1\.[01]\ 200[\ $'\r'] ]]
