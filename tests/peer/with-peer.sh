#!/usr/bin/env bash
# Run a command with the third-party SCIM peer up, and always stop it afterwards:
#
#   bash tests/peer/with-peer.sh cargo test --locked
#
# The peer's base URL reaches the tests as SCIMCTL_PEER_URL, and the bearer token it requires
# (random for each run) as SCIMCTL_PEER_TOKEN.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${SCIMCTL_PEER_DIR:-$here/../../target/scim-peer}

SCIMCTL_PEER_TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
SCIMCTL_PEER_URL=$(PEER_TOKEN=$SCIMCTL_PEER_TOKEN bash "$here/scim2-server.sh" start "$state")
export SCIMCTL_PEER_URL SCIMCTL_PEER_TOKEN
trap 'bash "$here/scim2-server.sh" stop "$state"' EXIT
"$@"
