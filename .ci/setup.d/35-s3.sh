#!/usr/bin/env bash
# moto's S3-compatible server, for tests/s3.rs (object storage end to end on loopback): the
# tests start `moto_server` themselves, one per test process, on a free port.
set -euo pipefail
VENV=${CURATE_VENV:-/opt/curate-venv}
exec 9>/tmp/curate-venv.lock; flock 9
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==5.2.5"
"$VENV/bin/moto_server" --help >/dev/null
