"""Speed and memory of huntlab's embedded engine against references, side by side.

Runs the heaviest bundled hunting job on generated telemetry at each size, each variant in its own
process (so peak memory is that variant's own), and prints wall time, peak RSS and the ratios:

- huntlab      : `run_job` on the embedded engine (Spark SQL transpiled, run on DuckDB), no write
- huntlab+write: the same, writing its output as a Delta commit, as `huntlab run` does
- huntlab@1GB  : the same with [engine] memory_limit = "1GB" (must finish by spilling)
- duckdb-sql   : the same question hand-written in DuckDB SQL over the same Delta files
- pyspark      : the job's Spark SQL as written, on PySpark local[2] (when pyspark is installed)
- spark-local  : `run_job` on huntlab's Spark engine, local[2] (session start-up not counted)
- spark-cluster: the same on a standalone master + two one-core workers on loopback

Usage: python -m benchmarks [--sizes 1000000,5000000] [--job family_prevalence] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench"

HANDWRITTEN = {
    "family_prevalence": """
        SELECT family, count(*) AS detections, count(DISTINCT client_id) AS clients,
               count(DISTINCT country) AS countries, count(DISTINCT file_hash) AS hashes,
               count(*) FILTER (WHERE event_type = 'beta_detection') AS beta_detections,
               min(ts) AS first_seen, max(ts) AS last_seen
        FROM events
        WHERE event_type IN ('blocked_infection', 'beta_detection', 'detection_hits')
          AND family IS NOT NULL
        GROUP BY family HAVING count(DISTINCT client_id) >= 1
        ORDER BY clients DESC, family""",
}


def workspace_for(n: int) -> Path:
    """A cached benchmark workspace holding n generated events."""
    from huntlab.demo import install_jobs, load_sample
    from huntlab.workspace import Workspace

    path = CACHE / f"ws-{n}"
    marker = path / ".huntlab" / "bench-ready"
    if not marker.exists():
        print(f"generating {n:,} events into {path} ...", flush=True)
        ws = Workspace.init(path)
        install_jobs(ws)
        load_sample(ws, n, progress=True)
        marker.write_text("ok")
    return path


def variant(name: str, ws_path: str, job: str) -> dict:
    """Run one variant in this process; returns its timing (called in a child process)."""
    t0 = time.perf_counter()
    if name.startswith("huntlab"):
        from huntlab.config import EngineConfig
        from huntlab.jobs.runner import run_job
        from huntlab.workspace import Workspace

        ws = Workspace(Path(ws_path))
        if name == "huntlab@1GB":
            ws.config.engine = EngineConfig(memory_limit="1GB", threads=2)
        res = run_job(ws, job, write=name == "huntlab+write")
        rows = res.rows_out
    elif name == "duckdb-sql":
        import duckdb
        from deltalake import DeltaTable

        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        con.register("events", DeltaTable(f"{ws_path}/data/events").to_pyarrow_dataset())
        rows = con.execute(HANDWRITTEN[job]).to_arrow_table().num_rows
    elif name.startswith("spark-"):
        return spark_engine_variant(name, ws_path, job)
    elif name == "pyspark":
        import psutil
        from pyspark.sql import SparkSession

        from huntlab.jobs.runner import coerce_param
        from huntlab.jobs.spec import parse_sql_job

        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.driver.memory", "4g")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "8")
            .getOrCreate()
        )
        t0 = time.perf_counter()  # session start-up is reported apart, not in the job's time
        spark.read.parquet(f"{ws_path}/data/events").createOrReplaceTempView("events")
        spec = parse_sql_job((Path(ws_path) / "jobs" / f"{job}.sql").read_text())
        args = {k: coerce_param(v) for k, v in spec.params.items()}
        rows = len(spark.sql(spec.sql, args=args).collect())
        elapsed = time.perf_counter() - t0
        jvm_kb = 0
        for child_proc in psutil.Process().children(recursive=True):
            jvm_kb += _peak_kb(f"/proc/{child_proc.pid}/status")
        return {"seconds": elapsed, "rows": rows, "extra_kb": jvm_kb}
    else:
        raise SystemExit(f"unknown variant {name}")
    return {"seconds": time.perf_counter() - t0, "rows": rows}


def spark_engine_variant(name: str, ws_path: str, job: str) -> dict:
    """huntlab's Spark engine on local[2] or on a standalone cluster started for the run."""
    import tempfile

    import psutil

    from huntlab.jobs.runner import run_job
    from huntlab.workspace import Workspace

    ws = Workspace(Path(ws_path))
    cfg = ws.config.engine
    cfg.type, cfg.master, cfg.driver_memory, cfg.shuffle_partitions = "spark", "local[2]", "4g", 8
    cluster = None
    if name == "spark-cluster":
        sys.path.insert(0, str(ROOT))
        from tests.services.spark import StandaloneCluster

        cluster = StandaloneCluster(Path(tempfile.mkdtemp(prefix="hl-bench-")), 2, "2g").start()
        cfg.master, cfg.executor_memory = cluster.master_url, "1536m"
    try:
        ws.engine("spark").close()  # start the session (and executors) before timing
        t0 = time.perf_counter()
        rows = run_job(ws, job, write=False).rows_out
        elapsed = time.perf_counter() - t0
        jvm_kb = sum(_peak_kb(f"/proc/{c.pid}/status") for c in psutil.Process().children(True))
    finally:
        from huntlab.engines.spark_session import stop_session

        stop_session()
        if cluster is not None:
            cluster.stop()
    return {"seconds": elapsed, "rows": rows, "extra_kb": jvm_kb}


def measure(name: str, ws_path: Path, job: str) -> dict:
    """Run a variant in a child process; the child reports its own peak RSS (ru_maxrss)."""
    cmd = [sys.executable, "-m", "benchmarks", "--child", name, str(ws_path), job]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    out, err = proc.communicate()
    if proc.returncode != 0:
        return {"error": (err.strip().splitlines() or ["failed"])[-1]}
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = result.pop("peak_kb", 0) / 1024
    return result


def _peak_kb(status_file: str) -> int:
    """VmHWM (peak resident set) of a process; 0 for one that has exited meanwhile."""
    try:
        with open(status_file) as fh:
            return next((int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def child(name: str, ws_path: str, job: str) -> None:
    result = variant(name, ws_path, job)
    # VmHWM is this process's own peak RSS (ru_maxrss would include the parent's, inherited
    # across fork and exec). For PySpark the JVM's own peak is added.
    # For PySpark the JVM's peak (extra_kb) is added to the driver's.
    result["peak_kb"] = _peak_kb("/proc/self/status") + result.pop("extra_kb", 0)
    print(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1000000,5000000")
    ap.add_argument("--job", default="family_prevalence")
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs per variant")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    try:
        import pyspark  # noqa: F401

        variants = ["duckdb-sql", "huntlab", "huntlab+write", "huntlab@1GB", "pyspark"]
        variants += ["spark-local", "spark-cluster"]
    except ImportError:
        variants = ["duckdb-sql", "huntlab", "huntlab+write", "huntlab@1GB"]
        print(
            "pyspark is not installed: the PySpark column is skipped "
            "(pip install 'huntlab[spark]' to include it)"
        )
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        ws = workspace_for(n)
        for v in variants:
            best = None
            for _ in range(args.repeat):
                r = measure(v, ws, args.job)
                if "error" in r or best is None or r["seconds"] < best["seconds"]:
                    best = r
                if "error" in r:
                    break
            rows.append((n, v, best))
            print(
                f"  {n:>11,} {v:<14} "
                + (f"{best['seconds']:.2f}s" if "seconds" in best else best["error"]),
                flush=True,
            )
    report(rows, args.job)


def report(rows: list, job: str) -> None:
    print(f"\njob: {job}   (2-core shared machine: compare ratios, not absolute times)")
    print(
        f"{'events':>11} {'variant':<14} {'wall s':>8} {'peak MB':>8} {'vs duckdb-sql':>14} "
        f"{'pyspark / this':>15} {'spark-local / this':>19}"
    )
    by = {(n, v): r for n, v, r in rows}
    for n, v, r in rows:
        if "error" in r:
            print(f"{n:>11,} {v:<14} {'FAILED':>8}  {r['error'][:80]}")
            continue
        ref = by.get((n, "duckdb-sql"), {}).get("seconds")
        spark = by.get((n, "pyspark"), {}).get("seconds")
        local = by.get((n, "spark-local"), {}).get("seconds")
        ratio = f"{r['seconds'] / ref:.2f}x" if ref else "-"
        sp = f"{spark / r['seconds']:.1f}x" if spark else "-"
        lo = f"{local / r['seconds']:.1f}x" if local else "-"
        print(
            f"{n:>11,} {v:<14} {r['seconds']:>8.2f} {r['peak_mb']:>8.0f} {ratio:>14} {sp:>15} "
            f"{lo:>19}"
        )
    print("targets: huntlab within 1.2x of duckdb-sql; pyspark/huntlab >= 5x; huntlab@1GB finishes")


if __name__ == "__main__":
    main()
