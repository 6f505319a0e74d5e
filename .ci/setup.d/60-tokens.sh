#!/usr/bin/env bash
# References for the training-data steps (crates/curate-tokens/tests/, crates/curate-cli/tests/
# tokens.rs): OpenAI's Python `tiktoken` (its rank files are written into a test-made
# TIKTOKEN_CACHE_DIR, so it never downloads), Hugging Face's Python `tokenizers` (trains the
# byte-level BPE tokenizer.json the tests use), numpy (the test's own Megatron .bin/.idx reader)
# and megatron-core, whose IndexedDataset reads the files back too. megatron-core is installed
# without dependencies: its `torch` requirement from PyPI brings a CUDA stack; the reader needs
# numpy only (tests/reference/megatron_core_read.py stubs the torch names it imports).
# datatrove (20-filters.sh) is the peer of the tokenization benchmark.
set -euo pipefail
VENV=${CURATE_VENV:-/opt/curate-venv}
exec 9>/tmp/curate-venv.lock; flock 9
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if "$VENV/bin/python" -c 'import sys; from importlib.metadata import version as v; sys.exit(not (v("tiktoken") == "0.14.0" and v("tokenizers") == "0.23.3" and v("megatron-core") == "0.16.1" and v("numpy").startswith("2.")))' 2>/dev/null; then
  exit 0
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "tiktoken==0.14.0" "tokenizers==0.23.3" "numpy>=2,<3"
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "megatron-core==0.16.1"
