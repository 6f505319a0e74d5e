#!/usr/bin/env python3
"""Builds configs/quickstart/reference.jsonl, the positive set of the quick start's
`reference` teacher (DCLM-style: reference positives vs. the corpus's own documents).

Source: "The Rust Programming Language" book as shipped with the Rust toolchain's offline docs
(rustup component rust-docs: share/doc/rust/html/book), licensed MIT OR Apache-2.0. It is
chosen because it is well-written explanatory prose that may be redistributed and is already on
every machine with a Rust toolchain: see docs/LABELING.md for the reasoning and its bias.

What is kept: the prose of each chapter page (paragraphs, list items, headings); code blocks,
navigation, scripts and styles are dropped, so the positives look like explanatory web text
rather than source code. Pages are cut into documents of at most ~4,000 characters at
paragraph boundaries; pieces under 800 characters are dropped. Output is capped at 1,000,000
bytes. Usage: python3 make_reference.py [BOOK_HTML_DIR] > reference.jsonl
"""
import glob
import html.parser
import json
import os
import sys

DEFAULT = os.path.expanduser("~/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu/share/doc/rust/html/book")
BLOCK = {"p", "li", "h1", "h2", "h3", "h4", "blockquote", "dt", "dd"}
SKIP = {"pre", "script", "style", "nav", "code-block", "aside", "header", "footer"}


class Prose(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.in_main = 0
        self.skip = 0
        self.cur = []
        self.paras = []

    def handle_starttag(self, tag, attrs):
        if tag == "main":
            self.in_main += 1
        if tag in SKIP:
            self.skip += 1
        if tag in BLOCK:
            self.flush()

    def handle_endtag(self, tag):
        if tag in SKIP and self.skip:
            self.skip -= 1
        if tag in BLOCK:
            self.flush()
        if tag == "main" and self.in_main:
            self.in_main -= 1

    def handle_data(self, data):
        if self.in_main and not self.skip:
            self.cur.append(data)

    def flush(self):
        text = " ".join("".join(self.cur).split())
        self.cur = []
        if text:
            self.paras.append(text)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    pages = sorted(glob.glob(os.path.join(root, "ch[0-9][0-9]-*.html")))
    if not pages:
        sys.exit(f"no chapter pages under {root}")
    out, total = [], 0
    for page in pages:
        p = Prose()
        with open(page, encoding="utf-8") as f:
            p.feed(f.read())
        p.flush()
        doc, n = [], 0
        pieces = []
        for para in p.paras:
            if doc and sum(len(x) + 2 for x in doc) + len(para) > 4000:
                pieces.append("\n\n".join(doc))
                doc = []
            doc.append(para)
        if doc:
            pieces.append("\n\n".join(doc))
        for piece in pieces:
            if len(piece) < 800:
                continue
            line = json.dumps({"id": f"rust-book/{os.path.basename(page)}#{n}", "text": piece}, ensure_ascii=False)
            if total + len(line.encode()) + 1 > 1_000_000:
                break
            out.append(line)
            total += len(line.encode()) + 1
            n += 1
    sys.stdout.write("\n".join(out) + "\n")
    print(f"{len(out)} documents, {total} bytes from {len(pages)} pages", file=sys.stderr)


if __name__ == "__main__":
    main()
