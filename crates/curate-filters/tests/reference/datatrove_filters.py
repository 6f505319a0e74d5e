"""Applies datatrove 0.10.1's filters to documents, one filter at a time, and prints decisions.

Input: a JSONL file of {"id", "text"} objects. Output (stdout): one JSON object per document:
{"id", "decisions": {step: [kept, reason]}, "c4_text": {step: text-or-null}, "words": [...]}.
Used by tests/differential.rs; every filter sees the original text (no chaining).
"""
import json
import sys
import time

from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.utils.text import split_into_words

FILTERS = {
    "gopher_repetition": GopherRepetitionFilter(),
    "gopher_quality": GopherQualityFilter(),
    "c4_quality": C4QualityFilter(),
    "c4_quality_fineweb": C4QualityFilter(filter_no_terminal_punct=False),
    "fineweb_quality": FineWebQualityFilter(),
}


def main(path, with_words):
    t0 = time.time()
    out = sys.stdout
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            rec = {"id": d["id"], "decisions": {}, "c4_text": {}}
            for name, flt in FILTERS.items():
                doc = Document(text=d["text"], id=d["id"])
                try:
                    res = flt.filter(doc)
                except ZeroDivisionError:
                    res = (False, "python_zero_division")
                kept, reason = (res, None) if not isinstance(res, tuple) else res
                rec["decisions"][name] = [bool(kept), reason]
                if name.startswith("c4_quality"):
                    rec["c4_text"][name] = doc.text if kept else None
            if with_words:
                rec["words"] = split_into_words(d["text"])
            out.write(json.dumps(rec, ensure_ascii=False))
            out.write("\n")
    print(f"datatrove: {time.time() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], "--words" in sys.argv[2:])
