"""Whole-run peer for the filter benchmark: datatrove 0.10.1's ParquetReader -> GopherRepetition
-> GopherQuality -> C4Quality(filter_no_terminal_punct=False) -> FineWebQuality -> ParquetWriter,
one worker, on the given parquet file(s). Prints wall time and MB/s of input text.

Usage: /opt/curate-venv/bin/python datatrove_chain.py INPUT_DIR OUTPUT_DIR [--lid MODEL]
(INPUT_DIR holds the parquet files; see docs/BENCHMARKS.md for the exact commands.) With
`--lid MODEL`, LanguageFilter(languages=["en"], language_threshold=0.65) runs first with MODEL
(lid.176.ftz) as its fastText model, as in FineWeb (datatrove would download lid.176.bin).
"""
import os
import sys
import time

import pyarrow.parquet as pq
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
)
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter

inp, out = sys.argv[1], sys.argv[2]
language = []
if len(sys.argv) > 4 and sys.argv[3] == "--lid":
    import datatrove.utils.lid

    # the model file instead of datatrove's download of lid.176.bin (loaded lazily, as usual)
    datatrove.utils.lid.cached_asset_path_or_download = lambda *a, **k: sys.argv[4]
    language = [LanguageFilter(languages=["en"], language_threshold=0.65)]
text_bytes = sum(
    sum(len(t.encode()) for t in pq.read_table(os.path.join(inp, f), columns=["text"]).column("text").to_pylist())
    for f in sorted(os.listdir(inp))
    if f.endswith(".parquet")
)
t0 = time.time()
LocalPipelineExecutor(
    pipeline=[
        ParquetReader(inp, glob_pattern="*.parquet"),
        *language,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        ParquetWriter(out),
    ],
    tasks=1,
    workers=1,
    logging_dir=os.path.join(out, "logs"),
).run()
dt = time.time() - t0
print(f"datatrove: {text_bytes / 1e6:.1f} MB of text in {dt:.1f} s = {text_bytes / 1e6 / dt:.2f} MB/s")
