"""Megatron-LM's own reader: `IndexedDataset` from the megatron-core wheel, reading .bin/.idx.

usage: megatron_core_read.py PREFIX... > documents.json

megatron-core is installed without its dependencies (.ci/setup.d/60-tokens.sh): its `torch`
requirement from PyPI brings a CUDA stack, which this machine cannot use. The reader's code path
(`_IndexReader`, `_MMapBinReader`, `IndexedDataset.__getitem__`) is numpy; torch appears only as
the `torch.utils.data.Dataset` base class and in helpers for object storage and distributed runs.
So a stub `torch` module supplies those names, megatron.core's package `__init__` (which imports
the model-parallel stack) is bypassed, and `megatron.core.utils.log_single_rank` is stubbed; the
module that parses the files is Megatron's, unmodified.
"""
import importlib.util
import json
import logging
import pathlib
import sys
import types

spec = importlib.util.find_spec("megatron")
if spec is None or not spec.submodule_search_locations:
    sys.exit("megatron-core is not installed")
root = pathlib.Path(list(spec.submodule_search_locations)[0])

torch = types.ModuleType("torch")
torch.utils = types.ModuleType("torch.utils")
torch.utils.data = types.ModuleType("torch.utils.data")
torch.utils.data.Dataset = type("Dataset", (), {})
torch.distributed = types.SimpleNamespace(is_initialized=lambda: False)
torch.Tensor = type("Tensor", (), {})
sys.modules.update({"torch": torch, "torch.utils": torch.utils, "torch.utils.data": torch.utils.data})


def package(name, path):
    m = types.ModuleType(name)
    m.__path__ = [str(path)]
    sys.modules[name] = m
    return m


package("megatron", root)
package("megatron.core", root / "core")
package("megatron.core.datasets", root / "core" / "datasets")
utils = types.ModuleType("megatron.core.utils")
utils.log_single_rank = lambda logger, level, *args, **kw: logger.log(level, *args)
sys.modules["megatron.core.utils"] = utils

from megatron.core.datasets.indexed_dataset import IndexedDataset  # noqa: E402

logging.basicConfig(level=logging.WARNING)
out = {}
for prefix in sys.argv[1:]:
    ds = IndexedDataset(prefix, multimodal=False, mmap=True)
    out[prefix] = {
        "dtype": ds.index.dtype.__name__,
        "documents": [ds[i].tolist() for i in range(len(ds))],
        "document_indices": ds.document_indices.tolist(),
    }
json.dump(out, sys.stdout)
