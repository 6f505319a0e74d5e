#!/usr/bin/env bash
# Reference for the filter differential test (crates/curate-filters/tests/differential.rs):
# datatrove 0.10.1 with its processing extras, and spaCy (datatrove's English word splitter is
# spacy.blank("en"), which needs only the wheel, no model download).
set -euo pipefail
VENV=${CURATE_VENV:-/opt/curate-venv}
exec 9>/tmp/curate-venv.lock; flock 9
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if "$VENV/bin/python" -c 'import datatrove, spacy, sys; from importlib.metadata import version; sys.exit(version("datatrove") != "0.10.1")' 2>/dev/null; then
  exit 0
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "datatrove[processing]==0.10.1" "spacy>=3.7,<4"
