"""An independent reader of Megatron-LM indexed datasets (.bin + .idx), written from the format
as Megatron-LM publishes it (megatron/core/datasets/indexed_dataset.py: _IndexWriter and
_IndexReader), with numpy alone.

usage: megatron_read.py PREFIX... > documents.json   (PREFIX = path without .bin / .idx)

Prints {prefix: {"dtype": ..., "documents": [[ids of document 0], ...]}}.
"""
import json
import struct
import sys

import numpy as np

# Megatron's DType enum: code -> numpy dtype
DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64,
          6: np.float64, 7: np.float32, 8: np.uint16}


def read(prefix):
    with open(prefix + ".idx", "rb") as f:
        assert f.read(9) == b"MMIDIDX\x00\x00", "bad magic"
        (version,) = struct.unpack("<Q", f.read(8))
        assert version == 1, f"version {version}"
        (code,) = struct.unpack("<B", f.read(1))
        (sequences,) = struct.unpack("<Q", f.read(8))
        (documents,) = struct.unpack("<Q", f.read(8))
        offset = f.tell()
    idx = np.memmap(prefix + ".idx", mode="r", order="C")
    lengths = np.frombuffer(idx, dtype=np.int32, count=sequences, offset=offset)
    pointers = np.frombuffer(idx, dtype=np.int64, count=sequences, offset=offset + lengths.nbytes)
    doc_index = np.frombuffer(idx, dtype=np.int64, count=documents,
                              offset=offset + lengths.nbytes + pointers.nbytes)
    assert offset + lengths.nbytes + pointers.nbytes + doc_index.nbytes == idx.size, "idx size"
    dtype = np.dtype(DTYPES[code])
    data = np.memmap(prefix + ".bin", mode="r", dtype=np.uint8)
    assert data.size == int(lengths.sum()) * dtype.itemsize, "bin size"
    assert doc_index[0] == 0 and doc_index[-1] == sequences, "document index"
    # pointers are the running byte offsets of the sequences
    expect = np.concatenate([[0], np.cumsum(lengths.astype(np.int64) * dtype.itemsize)[:-1]])
    assert sequences == 0 or (pointers == expect).all(), "pointers"
    docs = []
    for d in range(documents - 1):
        ids = []
        for s in range(doc_index[d], doc_index[d + 1]):
            ids.extend(np.frombuffer(data, dtype=dtype, count=int(lengths[s]),
                                     offset=int(pointers[s])).tolist())
        docs.append(ids)
    return {"dtype": dtype.name, "documents": docs}


json.dump({p: read(p) for p in sys.argv[1:]}, sys.stdout)
