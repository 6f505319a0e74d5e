#!/usr/bin/env bash
# The report test (crates/curate-cli/tests/report.rs): Debian's chromium renders report.html
# headless, and Hugging Face `datasets` reads the snapshot back (in the reference virtualenv).
set -euo pipefail
VENV=${CURATE_VENV:-/opt/curate-venv}
exec 9>/tmp/curate-venv.lock; flock 9
if ! dpkg -s chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if "$VENV/bin/python" -c 'import sys; from importlib.metadata import version; sys.exit(version("datasets") != "5.2.0")' 2>/dev/null; then
  exit 0
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "datasets==5.2.0" "pyarrow==26.0.1"
