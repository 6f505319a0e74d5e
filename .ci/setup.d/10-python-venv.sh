#!/usr/bin/env bash
# The reference-tool virtualenv (outside the repo): pyarrow and DuckDB read our outputs back.
set -euo pipefail
VENV=${CURATE_VENV:-/opt/curate-venv}
exec 9>/tmp/curate-venv.lock; flock 9
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check pyarrow==26.0.1 duckdb==2.0.0
