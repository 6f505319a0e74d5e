"""Hugging Face's Python `tokenizers`: train a byte-level BPE tokenizer.json on the given texts
(no download), then encode documents with it.

usage: hf_tokenizer.py train TEXTS VOCAB_SIZE OUT.json
       hf_tokenizer.py encode TOKENIZER.json DOCS ADD_SPECIAL(0|1) > ids.json
"""
import json
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

cmd = sys.argv[1]
if cmd == "train":
    texts_path, vocab, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(texts_path) as f:
        texts = json.load(f)
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
