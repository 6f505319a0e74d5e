"""Reference side of curate-fasttext's conformance tests: the Python `fasttext` package (the
fasttext-numpy2-wheel 0.9.2 build that datatrove 0.10.1 depends on) and datatrove's own filters.

Usage (all files JSONL, one object per line):
  fasttext_reference.py train IN OUT_DIR
      IN has {"text", "label"}; trains the test's models on it and writes OUT_DIR/<name>.bin|.ftz
  fasttext_reference.py train_binary IN OUT
      IN has {"text", "label"}; a softmax classifier of `hq` (label "en") vs `lq`, saved to OUT
  fasttext_reference.py predict MODEL IN OUT [NEWLINE]
      model.predict(text.replace("\\n", NEWLINE), k=-1) for each {"text"}: {"l": labels, "p": probs}
  fasttext_reference.py language MODEL IN OUT LANGS THRESHOLD
      datatrove's LanguageFilter(languages=LANGS.split(","), language_threshold=THRESHOLD) with
      MODEL as its fastText model: {"keep", "language", "language_score"}
  fasttext_reference.py classifier MODEL IN OUT LABEL THRESHOLD
      datatrove's FastTextClassifierFilter(MODEL, keep_labels=(LABEL, THRESHOLD)):
      {"keep", "score"} (score: the label's metadata value, or null when absent)
  fasttext_reference.py subwords MODEL IN OUT
      model.get_subwords(word) for each {"word"}: {"ids": the word's input rows, in order}
"""
import json
import os
import sys

import fasttext
from fasttext.FastText import _FastText

# (name, training arguments, quantization arguments or None): every loss, word and character
# n-grams, a dimension that is not a multiple of 16, a pruned quantized model and one with a
# quantized output matrix (which needs at least 256 labels: see `many`).
MODELS = [
    ("softmax", dict(loss="softmax", dim=16, wordNgrams=2, minn=0, maxn=0), None),
    ("hs", dict(loss="hs", dim=16, wordNgrams=1, minn=2, maxn=4), None),
    ("ova", dict(loss="ova", dim=10, wordNgrams=2, minn=3, maxn=5), None),
    ("ns", dict(loss="ns", dim=24, wordNgrams=3, minn=0, maxn=0, neg=3), None),
    ("softmax_q", dict(loss="softmax", dim=16, wordNgrams=2, minn=2, maxn=4),
     dict(cutoff=20000, qnorm=True, retrain=False, dsub=2)),
    ("many_q", dict(loss="softmax", dim=20, wordNgrams=2, minn=0, maxn=0),
     dict(qout=True, qnorm=True, retrain=False, dsub=4)),
]


def read(path):
    with open(path) as f:
        for line in f:
            yield json.loads(line)


def train(inp, out_dir):
    docs = list(read(inp))
    base = os.path.join(out_dir, "train.txt")
    many = os.path.join(out_dir, "train_many.txt")
    with open(base, "w") as f, open(many, "w") as g:
        for i, d in enumerate(docs):
            text = " ".join(d["text"].split())
            f.write(f"__label__{d['label']} {text}\n")
            # a 300-label task on the same text, for the quantized output matrix (fastText
            # quantizes a matrix of at least 256 rows only: every label occurs once there are
            # 300 documents, as on the bundled quick-start slice when the corpus is absent)
            g.write(f"__label__n{i % 300} {text}\n")
    for name, targs, qargs in MODELS:
        src = many if name == "many_q" else base
        m = fasttext.train_supervised(input=src, epoch=5, lr=0.2, bucket=200000, thread=1,
                                      verbose=0, seed=7, **targs)
        if qargs is None:
            m.save_model(os.path.join(out_dir, name + ".bin"))
        else:
            m.quantize(input=src, **qargs)
            m.save_model(os.path.join(out_dir, name + ".ftz"))


def train_binary(inp, out):
    """A two-label classifier (`hq`: the corpus says English; `lq`: otherwise), softmax."""
    path = out + ".txt"
    with open(path, "w") as f:
        for d in read(inp):
            label = "hq" if d["label"] == "en" else "lq"
            f.write(f"__label__{label} {' '.join(d['text'].split())}\n")
    m = fasttext.train_supervised(input=path, epoch=5, lr=0.2, dim=32, wordNgrams=2, minn=0, maxn=0,
                                  bucket=200000, thread=1, verbose=0, seed=7)
    m.save_model(out)


def predict(model, inp, out, newline=" "):
    m = _FastText(model)
    with open(out, "w") as f:
        for d in read(inp):
            labels, probs = m.predict(d["text"].replace("\n", newline), k=-1)
            f.write(json.dumps({"l": list(labels), "p": [float(p) for p in probs]}) + "\n")


def language(model, inp, out, langs, threshold):
    from datatrove.data import Document
    from datatrove.pipeline.filters import LanguageFilter

    lf = LanguageFilter(languages=langs.split(","), language_threshold=float(threshold))
    lf.model._model = _FastText(model)  # instead of downloading lid.176.bin
    with open(out, "w") as f:
        for i, d in enumerate(read(inp)):
            doc = Document(text=d["text"], id=str(i))
            keep = bool(lf.filter(doc))
            f.write(json.dumps({"keep": keep, "language": doc.metadata["language"],
                                "language_score": doc.metadata["language_score"]}) + "\n")


def classifier(model, inp, out, label, threshold):
    from datatrove.data import Document
    from datatrove.pipeline.filters import FastTextClassifierFilter

    cf = FastTextClassifierFilter(model, keep_labels=(label, float(threshold)))
    cf._model = _FastText(model)  # instead of copying it into datatrove's download cache
    with open(out, "w") as f:
        for i, d in enumerate(read(inp)):
            doc = Document(text=d["text"], id=str(i))
            keep = bool(cf.filter(doc))
            f.write(json.dumps({"keep": keep, "score": doc.metadata.get("__label__" + label)}) + "\n")


def subwords(model, inp, out):
    m = _FastText(model)
    with open(out, "w") as f:
        for d in read(inp):
            _, ids = m.get_subwords(d["word"])
            f.write(json.dumps({"ids": [int(i) for i in ids]}) + "\n")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"train": train, "train_binary": train_binary, "predict": predict, "language": language, "classifier": classifier,
     "subwords": subwords}[cmd](*args)
