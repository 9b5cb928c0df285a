"""Start or stop a Spark standalone cluster (master + two workers) on loopback by hand.

Usage: python scripts/spark_cluster.py start [DIR]   # prints the master URL for [engine] master
       python scripts/spark_cluster.py stop [DIR]
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.services.spark import StandaloneCluster  # noqa: E402


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("start", "stop"):
        print(__doc__)
        return 2
    workdir = Path(argv[1] if len(argv) > 1 else ".cache/spark-cluster").resolve()
    state = workdir / "cluster.json"
    if argv[0] == "start":
        cluster = StandaloneCluster(workdir).start()
        pids = [p.pid for p in cluster.procs]
        state.write_text(json.dumps({"master": cluster.master_url, "pids": pids}))
        print(f"master {cluster.master_url}  (web UI http://127.0.0.1:{cluster.ui_port})")
        print(f'set [engine] type = "spark" and master = "{cluster.master_url}" in huntlab.toml')
        return 0
    if not state.exists():
        print(f"no cluster recorded in {state}")
        return 1
    for pid in reversed(json.loads(state.read_text())["pids"]):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    state.unlink()
    print("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
