"""Hugging Face's Python `tokenizers`: train a byte-level BPE tokenizer.json on the given texts
(no download), then encode documents with it.

usage: hf_tokenizer.py train TEXTS VOCAB_SIZE OUT.json [gpt2|llama3]
       hf_tokenizer.py encode TOKENIZER.json DOCS ADD_SPECIAL(0|1) > ids.json

Styles: `gpt2` is a ByteLevel pre-tokenizer (GPT-2's regex); `llama3` is Llama-3's layout, a
Split on its regex followed by a regex-less ByteLevel, with `ignore_merges`.
"""
import json
import sys

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
          r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

cmd = sys.argv[1]
if cmd == "train":
    texts_path, vocab, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    style = sys.argv[5] if len(sys.argv) > 5 else "gpt2"
    with open(texts_path) as f:
        texts = json.load(f)
    if style == "llama3":
        tok = Tokenizer(models.BPE(ignore_merges=True))
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.save(out)
elif cmd == "encode":
    path, docs_path, add = sys.argv[2], sys.argv[3], sys.argv[4] == "1"
    tok = Tokenizer.from_file(path)
    tok.no_truncation()
    tok.no_padding()
    with open(docs_path) as f:
        docs = json.load(f)
    ids = [e.ids for e in tok.encode_batch(docs, add_special_tokens=add)]
    json.dump({"eos": tok.token_to_id("<|endoftext|>"), "ids": ids}, sys.stdout)
else:
    sys.exit(f"unknown command {cmd}")
