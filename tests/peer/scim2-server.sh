#!/usr/bin/env bash
# Manage the third-party SCIM 2.0 peer used by the integration tests: python-scim's
# scim2-server (PyPI), pinned, in a private virtualenv, listening on loopback only.
#
#   scim2-server.sh start [DIR]   install if needed, start, wait until it answers;
#                                 prints the base URL (http://127.0.0.1:PORT/v2) on stdout
#   scim2-server.sh stop [DIR]    stop the server started from DIR, by its recorded PID
#
# DIR (default target/scim-peer) holds the virtualenv, the PID file and the log.
# Environment: PORT (default: a free port chosen at start), PYTHON (default python3, >= 3.11),
# READY_SECONDS (default 60), PEER_TOKEN (if set, the server requires it as a bearer token; it
# is passed in the environment, never on the command line where `ps` would show it).
set -euo pipefail

VERSION=0.8.3
# The server and every dependency pinned, so each run installs the same code.
REQUIREMENTS=(
    "scim2-server==$VERSION" "scim2-models==0.12.3" "pydantic==2.14.3" "pydantic-core==2.50.4"
    "annotated-types==0.8.0" "typing-extensions==4.16.0" "typing-inspection==0.4.5"
    "lark==1.3.1" "email-validator==2.4.0" "dnspython==2.9.2" "idna==3.20"
)

log() { printf 'scim2-server.sh: %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

action=${1:-}
dir=${2:-target/scim-peer}
[[ $action == start || $action == stop ]] || fail "usage: scim2-server.sh start|stop [DIR]"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pidfile=$dir/server.pid
python=${PYTHON:-python3}

running() { # pid -> true while that process is alive and not a zombie
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

if [[ $action == stop ]]; then
    [[ -f $pidfile ]] || { log "nothing to stop in $dir"; exit 0; }
    pid=$(<"$pidfile")
    if [[ $pid =~ ^[0-9]+$ ]] && running "$pid"; then
        kill "$pid"
        for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
        running "$pid" && kill -9 "$pid"
        log "stopped PID $pid"
    fi
    rm -f "$pidfile"
    exit 0
fi

if [[ -f $pidfile ]] && running "$(<"$pidfile")"; then
    fail "a server from $dir is already running as PID $(<"$pidfile"); stop it first"
fi

# A private virtualenv with exactly the pinned packages.
venv=$dir/venv
if [[ ! -x $venv/bin/scim2-server ]] || [[ $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("scim2-server"))' 2>/dev/null) != "$VERSION" ]]; then
    command -v "$python" >/dev/null || fail "$python not found (set PYTHON to a Python >= 3.11)"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || fail "scim2-server needs Python >= 3.11"
    log "installing scim2-server $VERSION into $venv"
    "$python" -m venv "$venv" || fail "could not create a virtualenv (install python3-venv)"
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "${REQUIREMENTS[@]}" >&2 \
        || fail "pip install failed"
fi

# Ask the kernel for a free loopback port unless one was given.
port=${PORT:-$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
url="http://127.0.0.1:$port/v2"

# A token given on the command line would be visible in `ps`; read it inside Python instead.
if [[ -n ${PEER_TOKEN:-} ]]; then
    export PEER_TOKEN
    nohup "$venv/bin/python" -c 'import os, sys; sys.argv = ["scim2-server", *sys.argv[1:], "--bearer-token", os.environ["PEER_TOKEN"]]; from scim2_server.testserver.cli import main; sys.exit(main())' \
        --hostname 127.0.0.1 --port "$port" >"$dir/server.log" 2>&1 </dev/null &
else
    nohup "$venv/bin/scim2-server" --hostname 127.0.0.1 --port "$port" >"$dir/server.log" 2>&1 </dev/null &
fi
pid=$!
echo "$pid" >"$pidfile"

deadline=$((SECONDS + ${READY_SECONDS:-60}))
until "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "$url/ServiceProviderConfig" >/dev/null 2>&1; do
    if ! running "$pid"; then
        rm -f "$pidfile"
        tail -n 20 "$dir/server.log" >&2 || true
        fail "scim2-server exited before answering"
    fi
    if ((SECONDS >= deadline)); then
        kill "$pid" || true
        rm -f "$pidfile"
        fail "scim2-server did not answer within ${READY_SECONDS:-60}s"
    fi
    sleep 0.2
done
log "scim2-server $VERSION ready at $url (PID $pid)"
echo "$url"
