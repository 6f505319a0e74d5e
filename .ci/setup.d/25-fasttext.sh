#!/usr/bin/env bash
# Reference for curate-fasttext's conformance tests (crates/curate-fasttext/tests/conformance.rs)
# and the fastText steps' tests against datatrove (crates/curate-filters/tests/fasttext_rules.rs):
# the Python fastText build datatrove 0.10.1 itself runs (`fasttext-numpy2-wheel`, fastText's C++
# with Python 3.11 / numpy 2 wheels; `import fasttext`), pinned. It also trains the test models.
# Runs after 20-filters.sh (datatrove[processing] usually brings it already).
set -euo pipefail
VENV=${CURATE_VENV:-/opt/curate-venv}
exec 9>/tmp/curate-venv.lock; flock 9
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if "$VENV/bin/python" -c 'import fasttext, sys; from importlib.metadata import version; sys.exit(version("fasttext-numpy2-wheel") != "0.9.2")' 2>/dev/null; then
  exit 0
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "fasttext-numpy2-wheel==0.9.2"
