//! Snapshots are plain parquet: pyarrow and DuckDB read the same rows and schema we wrote.

use crate::common;

use common::*;

#[test]
fn pyarrow_and_duckdb_read_the_snapshot() {
    let Some(py) = curate_testkit::reference_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let input = curate_testkit::corpus_shard_or_sample();
    let cfg = write_config(
        tmp.path(),
        "c.toml",
        &format!(
            "[input]\npaths = [{}]\nid_column = \"id\"\n[[steps]]\ntype = \"length\"\nmin_words = 80\n[output]\ntarget_file_size = \"30MB\"\nrow_group_size = 1000\n",
            q(&input)
        ),
    );
    let out = tmp.path().join("o");
    run_ok(&[
        "run",
        "-q",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let m = manifest(&out);
    let kept = m["totals"]["kept_rows"].as_u64().unwrap();
    let script = r#"
import sys, json, glob
import pyarrow.parquet as pq, pyarrow.dataset as ds, duckdb
d = sys.argv[1]
t = ds.dataset(sorted(glob.glob(d + "/data/*.parquet")), format="parquet").to_table()
con = duckdb.connect()
n_duck, ids_duck = con.execute(f"select count(*), count(distinct id) from read_parquet('{d}/data/*.parquet')").fetchone()
schema_duck = [r[0] for r in con.execute(f"describe select * from read_parquet('{d}/data/*.parquet')").fetchall()]
src = pq.read_table(sys.argv[2])
print(json.dumps({
  "rows": t.num_rows, "distinct_ids": len(set(t.column("id").to_pylist())),
  "schema": [f"{f.name}:{f.type}" for f in t.schema],
  "src_schema": [f"{f.name}:{f.type}" for f in src.schema],
  "duck_rows": n_duck, "duck_ids": ids_duck, "duck_cols": schema_duck,
  "first_text_matches": t.column("text")[0].as_py() in set(src.column("text").to_pylist()),
}))
"#;
    let o = std::process::Command::new(py)
        .args(["-c", script, out.to_str().unwrap(), input.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rows"].as_u64().unwrap(), kept);
    assert_eq!(v["duck_rows"].as_u64().unwrap(), kept);
    assert_eq!(v["distinct_ids"].as_u64().unwrap(), kept);
    assert_eq!(v["duck_ids"].as_u64().unwrap(), kept);
    assert_eq!(
        v["schema"], v["src_schema"],
        "schema must pass through unchanged"
    );
    assert_eq!(
        v["duck_cols"].as_array().unwrap().len(),
        v["schema"].as_array().unwrap().len()
    );
    assert_eq!(v["first_text_matches"], true);
}
