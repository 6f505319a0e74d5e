"""datatrove: its four MinHash stages with the default MinhashConfig, one task each, locally."""
import shutil
import sys
import tempfile
import time

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import ParquetReader

path = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/corpus/shard-00001.parquet"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 20089
work = tempfile.mkdtemp()
cfg = MinhashConfig()
data_dir, name = path.rsplit("/", 1)


def reader():
    return ParquetReader(data_dir, glob_pattern=name, limit=n, text_key="text")


stages = [
    ("signatures", [reader(), MinhashDedupSignature(output_folder=f"{work}/sigs", config=cfg)], 1),
    ("buckets", [MinhashDedupBuckets(input_folder=f"{work}/sigs", output_folder=f"{work}/buckets", config=cfg)], cfg.num_buckets),
    ("cluster", [MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove", config=cfg)], 1),
    ("filter", [reader(), MinhashDedupFilter(input_folder=f"{work}/remove")], 1),
]
t0 = time.perf_counter()
for name_, pipe, tasks in stages:
    ts = time.perf_counter()
    LocalPipelineExecutor(pipeline=pipe, tasks=tasks, workers=1, logging_dir=f"{work}/logs-{name_}").run()
    print(f"datatrove {name_}: {time.perf_counter() - ts:.2f} s", flush=True)
print(f"datatrove total: {time.perf_counter() - t0:.2f} s")
shutil.rmtree(work)
