"""OpenAI's Python tiktoken, offline: encode documents with encode_ordinary_batch.

usage: tiktoken_encode.py ENCODING RANKS DOCS CACHE_DIR > ids.json

RANKS holds the encoding's ordinary tokens, one hex line per rank in rank order, exported from
the rank file the Rust crate embeds. They are written back in tiktoken's `.tiktoken` format into
CACHE_DIR under the cache key tiktoken uses for the official file's URL; tiktoken then loads the
encoding from there and checks the file's SHA-256 against the one it pins for that URL (a
mismatch would make it try to download, which fails here): so the ranks are byte for byte
OpenAI's published file.
"""
import base64
import hashlib
import json
import os
import sys

name, ranks_path, docs_path, cache = sys.argv[1:5]
url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
with open(ranks_path) as f:
    hexes = f.read().split()
data = "".join(
    f"{base64.b64encode(bytes.fromhex(h)).decode()} {rank}\n" for rank, h in enumerate(hexes)
).encode()
os.makedirs(cache, exist_ok=True)
with open(os.path.join(cache, hashlib.sha1(url.encode()).hexdigest()), "wb") as f:
    f.write(data)
os.environ["TIKTOKEN_CACHE_DIR"] = cache

import tiktoken  # noqa: E402  (after the cache directory is set)

enc = tiktoken.get_encoding(name)
with open(docs_path) as f:
    docs = json.load(f)
ids = enc.encode_ordinary_batch(docs, num_threads=1)
json.dump({"eot_token": enc.eot_token, "n_vocab": enc.n_vocab, "ids": ids}, sys.stdout)
