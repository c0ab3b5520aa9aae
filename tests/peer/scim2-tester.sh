#!/usr/bin/env bash
# Run python-scim's compliance checker scim2-tester (PyPI), pinned, in a private virtualenv,
# against `scimctl sandbox serve` on a free loopback port, and print what it found.
#
#   tests/peer/scim2-tester.sh [DIR]
#
# DIR (default target/scim-tester) holds the virtualenv, the sandbox's state file and its log.
# The sandbox binary is target/debug/scimctl unless SCIMCTL is set (build it first:
# `cargo build`). Environment: PYTHON (default python3, >= 3.10), READY_SECONDS (default 30),
# QUIRKS (space-separated `--quirk` names for the sandbox, default none).
#
# Every check is printed as `STATUS [resource type] title: reason`, then a count per status.
# Two fixes to the checker are applied at run time: it fills decimal attributes with numbers,
# and its PATCH add check reads RFC 7644's append to a multi-valued attribute as it is written
# (see the comments in the Python below).
# Exits 0 when no check ended ERROR or CRITICAL, 1 when some did, 2 when it could not run.
# .ci/run runs it against the default sandbox and fails on any ERROR or CRITICAL check.
set -euo pipefail

VERSION=0.5.2
# The checker and every dependency pinned, so each run installs the same code.
REQUIREMENTS=(
    "scim2-tester[httpx2]==$VERSION" "scim2-client==0.13.2" "scim2-models==0.12.3"
    "httpx2==2.17.0" "httpcore2==2.17.0" "h11==0.16.0" "anyio==4.16.0" "truststore==0.10.5"
    "pydantic==2.14.4" "pydantic-core==2.50.5" "annotated-types==0.8.0"
    "typing-extensions==4.16.0" "typing-inspection==0.4.5" "lark==1.3.1"
    "email-validator==2.4.0" "dnspython==2.9.2" "idna==3.21"
)

log() { printf 'scim2-tester.sh: %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 2; }

dir=${1:-target/scim-tester}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
python=${PYTHON:-python3}
scimctl=${SCIMCTL:-target/debug/scimctl}
[[ -x $scimctl ]] || fail "$scimctl not found (run \`cargo build\` or set SCIMCTL)"

running() { # pid -> true while that process is alive and not a zombie
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# A private virtualenv with exactly the pinned packages.
venv=$dir/venv
if [[ $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("scim2-tester"))' 2>/dev/null) != "$VERSION" ]] \
    || ! "$venv/bin/python" -c 'import httpx2' 2>/dev/null; then
    command -v "$python" >/dev/null || fail "$python not found (set PYTHON to a Python >= 3.10)"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || fail "scim2-tester needs Python >= 3.10"
    log "installing scim2-tester $VERSION into $venv"
    "$python" -m venv "$venv" || fail "could not create a virtualenv (install python3-venv)"
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "${REQUIREMENTS[@]}" >&2 \
        || fail "pip install failed"
fi

# A fresh sandbox: empty state, a random bearer token passed in the environment (never on a
# command line, where `ps` would show it), port 0 so the kernel picks a free loopback port.
state=$dir/sandbox.json
rm -f "$state" "$state.journal"
SCIM2_TESTER_TOKEN=$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(16))')
export SCIM2_TESTER_TOKEN
quirk_args=()
for quirk in ${QUIRKS:-}; do quirk_args+=(--quirk "$quirk"); done
"$scimctl" sandbox serve --state "$state" --listen 127.0.0.1:0 --token-env SCIM2_TESTER_TOKEN \
    "${quirk_args[@]}" >"$dir/sandbox.out" 2>"$dir/sandbox.log" </dev/null &
pid=$!
stop() {
    if running "$pid"; then
        kill "$pid"
        for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
        running "$pid" && kill -9 "$pid"
    fi
    wait "$pid" 2>/dev/null || true
}
trap stop EXIT

# The URL is the first thing the sandbox prints on stdout.
url=
deadline=$((SECONDS + ${READY_SECONDS:-30}))
until [[ -n $url ]]; do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/scim/v2' "$dir/sandbox.out" 2>/dev/null | head -n 1 || true)
    [[ -n $url ]] && break
    running "$pid" || { tail -n 20 "$dir/sandbox.log" >&2 || true; fail "the sandbox exited before serving"; }
    ((SECONDS < deadline)) || fail "the sandbox printed no URL within ${READY_SECONDS:-30}s"
    sleep 0.2
done
log "sandbox (PID $pid) at $url"

set +e
"$venv/bin/python" - "$url" <<'PY'
import collections
import os
import sys

import random

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server, filling
from scim2_tester.checkers import patch_add

# scim2-tester 0.5.2 fills a `decimal` attribute with a random string (its filler knows int,
# bool, references, enums and complex values, not float), which its own models then refuse
# before anything is sent, so every User check that fills all attributes errors on the Genesys
# extension's routingSkills.proficiency. Give decimals a number instead.
_generate = filling.generate_random_value


def _generate_with_decimals(context, path, *args, **kwargs):
    value = _generate(context, path, *args, **kwargs)
    binding = path.resolve()
    if isinstance(value, str) and binding is not None and binding.target_type is float:
        return round(random.uniform(0, 5), 2)
    return value


filling.generate_random_value = _generate_with_decimals

# Its PATCH `add` check compares a multi-valued attribute's whole list with the values it
# added. RFC 7644 §3.5.2.1: "If the target location specifies a multi-valued attribute, a new
# value is added to the attribute", so values already there stay. The check adds a whole
# extension first (filling its lists), then each of the extension's multi-valued attributes,
# and reads the kept values as an error. Check instead that every value added is in the list,
# and nothing else about it changes: a value missing, or changed, still fails.
_fields_equality = patch_add.fields_equality


def _added_values_kept(patched, actual):
    if isinstance(patched, list) and isinstance(actual, list):
        return all(any(_fields_equality(p, a) for a in actual) for p in patched)
    return _fields_equality(patched, actual)


patch_add.fields_equality = _added_values_kept

url = sys.argv[1]
token = os.environ["SCIM2_TESTER_TOKEN"]
with Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
    results = check_server(SyncSCIMClient(http))

counts = collections.Counter(r.status.name for r in results)
for r in results:
    where = f" [{r.resource_type}]" if r.resource_type else ""
    reason = " ".join((r.reason or "").split())
    print(f"{r.status.name:<10}{where} {r.title}: {reason}")
print()
print(f"{len(results)} checks: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
sys.exit(1 if counts[Status.ERROR.name] or counts[Status.CRITICAL.name] else 0)
PY
status=$?
set -e
exit "$status"
