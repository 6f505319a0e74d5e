#!/usr/bin/env bash
# Tokenization, whole process, per core: curate's `tokenize` against datatrove 0.10.1's
# DocumentTokenizer (and its MegatronDocumentTokenizer, the same output format as curate's) with
# the same byte-level BPE tokenizer.json, and curate with cl100k_base against OpenAI's Python
# tiktoken `encode_ordinary_batch` (num_threads=1). Same documents, same run. Every tool runs on
# one thread (curate -j 1, RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false for Hugging
# Face's tokenizers); per-core figures are CPU seconds (user + sys) from /usr/bin/time.
#   usage: bash benches/whole/tokenize.sh [shard.parquet] [documents]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARD=${1:-../shared/corpus/shard-00001.parquet}
DOCS=${2:-4000}
PY=${CURATE_PYTHON:-/opt/curate-venv/bin/python}
WORK=$(mktemp -d /tmp/curate-tokenize-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
cargo build --release -q -p curate-cli
cargo run --release -q -p curate-tokens --example export_ranks -- cl100k_base > "$WORK/cl100k.hex"
mkdir -p "$WORK/slice"
# the documents (one row group), and a 50,257-id byte-level BPE tokenizer.json trained on the
# next 4,000 documents of the shard (GPT-2's vocabulary size)
"$PY" - "$SHARD" "$DOCS" "$WORK" <<'PY'
import sys, pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
shard, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t = pq.read_table(shard, columns=["text", "id"])
pq.write_table(t.slice(0, n), f"{work}/slice/slice.parquet", row_group_size=n)
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.post_processor = processors.ByteLevel(trim_offsets=False)
trainer = trainers.BpeTrainer(vocab_size=50257, special_tokens=["<|endoftext|>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train_from_iterator(t.slice(n, 4000).column("text").to_pylist(), trainer)
tok.save(f"{work}/tokenizer.json")
text = t.slice(0, n).column("text").to_pylist()
print(f"{len(text)} documents, {sum(len(x.encode()) for x in text)} bytes of text")
PY
cat > "$WORK/dt.py" <<'PY'
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.tokens import DocumentTokenizer
from datatrove.pipeline.tokens.megatron_tokenizer import MegatronDocumentTokenizer
slice_dir, tok, out, kind = sys.argv[1:5]
step = (DocumentTokenizer(output_folder=out, tokenizer_name_or_path=tok, eos_token="<|endoftext|>",
                          shuffle_documents=True, seed=5, batch_size=1000)
        if kind == "document" else
        MegatronDocumentTokenizer(output_folder=out, tokenizer_name_or_path=tok,
                                  eos_token="<|endoftext|>", batch_size=1000))
LocalPipelineExecutor(pipeline=[ParquetReader(slice_dir, text_key="text"), step], tasks=1, workers=1,
                      logging_dir=f"{out}/logs", skip_completed=False).run()
PY
cat > "$WORK/tt.py" <<'PY'
import base64, hashlib, os, sys, time
name, ranks, cache, slice_path = sys.argv[1:5]
url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
os.makedirs(cache, exist_ok=True)
with open(ranks) as f, open(os.path.join(cache, hashlib.sha1(url.encode()).hexdigest()), "wb") as o:
    o.write("".join(f"{base64.b64encode(bytes.fromhex(h)).decode()} {r}\n"
                    for r, h in enumerate(f.read().split())).encode())
os.environ["TIKTOKEN_CACHE_DIR"] = cache
import pyarrow.parquet as pq, tiktoken
enc = tiktoken.get_encoding(name)
texts = pq.read_table(slice_path, columns=["text"]).column("text").to_pylist()
c0 = time.process_time()
ids = enc.encode_ordinary_batch(texts, num_threads=1)
cpu = time.process_time() - c0
n = sum(len(x) + 1 for x in ids)
print(f"tiktoken {tiktoken.__version__} encode_ordinary_batch: {n} tokens (EOS counted) in {cpu:.2f} CPU s "
      f"(encoding only) = {n / cpu / 1e6:.2f} M tokens/s per core")
PY
for tok in json cl100k; do
  if [ $tok = json ]; then spec="$WORK/tokenizer.json"; else spec=cl100k_base; fi
  cat > "$WORK/$tok.toml" <<TOML
[input]
paths = ["$WORK/slice/slice.parquet"]
[[steps]]
type = "tokenize"
tokenizer = "$spec"
[run]
seed = 5
TOML
done
echo "datatrove $("$PY" -c 'from importlib.metadata import version as v; print(v("datatrove"), "tokenizers", v("tokenizers"))'), curate $(./target/release/curate --version), load $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$WORK/slice/slice.parquet" > /dev/null
tokens() { "$PY" -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['tokens'])" "$1/tokens/stats.json"; }
for round in 1 2; do
  for tok in json cl100k; do
    rm -rf "$WORK/out-$tok"
    /usr/bin/time -f "curate -j 1 ($tok): %e s wall, %U+%S s CPU, %M KB peak RSS" \
      ./target/release/curate run -q -j 1 --config "$WORK/$tok.toml" --output "$WORK/out-$tok"
    echo "  tokens: $(tokens "$WORK/out-$tok")"
  done
  for kind in document megatron; do
    rm -rf "$WORK/dt-$kind"
    /usr/bin/time -f "datatrove $kind tokenizer (tokenizer.json): %e s wall, %U+%S s CPU, %M KB peak RSS" \
      "$PY" "$WORK/dt.py" "$WORK/slice" "$WORK/tokenizer.json" "$WORK/dt-$kind" "$kind" 2>"$WORK/dt-$kind.log" \
      || { tail -20 "$WORK/dt-$kind.log"; exit 1; }
    tail -1 "$WORK/dt-$kind.log"
  done
  /usr/bin/time -f "python tiktoken (whole process): %e s wall, %U+%S s CPU, %M KB peak RSS" \
    "$PY" "$WORK/tt.py" cl100k_base "$WORK/cl100k.hex" "$WORK/tt-cache" "$WORK/slice/slice.parquet"
done
# the same documents: curate's tokenizer.json tokens equal datatrove's Megatron output's total
"$PY" - "$WORK" <<'PY'
import glob, json, sys, numpy as np
w = sys.argv[1]
s = json.load(open(f"{w}/out-json/tokens/stats.json"))
dt = sum(int(np.frombuffer(open(p, "rb").read()[18:26], dtype=np.uint64)[0]) for p in glob.glob(f"{w}/dt-megatron/*.idx"))
dtt = sum(np.fromfile(p, dtype=np.uint16).size for p in glob.glob(f"{w}/dt-megatron/*.bin"))
print(f"same work: curate {s['documents']} documents / {s['tokens']} tokens; datatrove Megatron {dt} sequences / {dtt} tokens")
PY
