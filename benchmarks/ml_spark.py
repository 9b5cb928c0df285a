"""URL scoring on Spark (mapInArrow) against embedded Arrow batches, and pyspark.ml LR quality.

- embedded-score : score_dataset, the champion over Arrow batches of 50k in one process
- spark-score    : score_on_spark, the same champion and code in mapInArrow tasks (local[N])
- spark_lr       : pyspark.ml LR trained on Spark, test part of the domain-grouped split, beside
                   the embedded blend trained on the same rows and split

Usage: python -m benchmarks.ml_spark [--rows N] [--champion-rows 20000] [--master local[2]]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def workspace(master: str, rows: int | None, source: Path):  # type: ignore[no-untyped-def]
    """A fresh workspace on Spark `master` with the labeled URLs (all or a sample) loaded."""
    from huntlab.ml.loading import load_shared_urls
    from huntlab.workspace import Workspace

    ws = Workspace.init(Path(tempfile.mkdtemp(prefix="mlspark-")) / "ws")
    cfg = ws.config.model_copy(deep=True)
    cfg.engine.master = master
    ws = Workspace(ws.root, cfg)
    load_shared_urls(ws, source, sample=rows)
    return ws


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=None, help="sample of URLs (default: all)")
    ap.add_argument("--champion-rows", type=int, default=20_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--source", type=Path, default=ROOT / ".." / "shared" / "data" / "urls")
    ap.add_argument("--skip-train", action="store_true")
    a = ap.parse_args()

    from huntlab.ml import registry
    from huntlab.ml.metrics import headline
    from huntlab.ml.score import score_dataset
    from huntlab.ml.spark_ml import score_on_spark
    from huntlab.ml.spark_train import train_on_spark
    from huntlab.ml.train import train_model

    ws = workspace(a.master, a.rows, a.source)
    champ = train_model(ws, "champ", "urls", kinds=["blend"], sample=a.champion_rows).record
    model = registry.load(ws, champ)
    score_on_spark(ws, champ, "popular_domains", "warmup", column="domain")  # session start-up
    emb, t_emb = timed(lambda: score_dataset(ws, champ, model, "urls", "s_emb"))
    spk, t_spk = timed(lambda: score_on_spark(ws, champ, "urls", "s_spark"))
    print(f"\nscoring {emb.rows:,} URLs with {champ.ref} (blend), master {a.master}")
    print(f"{'engine':<16}{'seconds':>10}{'URLs/s':>10}{'vs embedded':>13}")
    for name, t in (("embedded", t_emb), ("spark", t_spk)):
        print(f"{name:<16}{t:>10.1f}{emb.rows / t:>10.0f}{t_emb / t:>12.2f}x")
    if a.skip_train:
        return
    lr, t_lr = timed(lambda: train_on_spark(ws, "lr", "urls"))
    ref, t_ref = timed(lambda: train_model(ws, "ref", "urls", kinds=["ngram_linear", "blend"]))
    print(f"\ngrouped split, test rows {lr.record.metrics['rows']['test']:,}")
    print(f"{'model':<22}{'macro F1':>9}{'ROC-AUC':>9}{'R@1%':>8}{'R@0.1%':>8}{'train s':>9}")
    rows = [("spark_lr (pyspark.ml)", lr.test, t_lr)]
    rows += [(f"{k} (embedded)", m, t_ref) for k, m in ref.candidates.items()]
    rows += [(f"{ref.record.kind} embedded test", ref.test, t_ref)]
    for name, m, t in rows:
        h = headline(m)
        print(
            f"{name:<22}{h['macro_f1']:>9.3f}{h['roc_auc']:>9.3f}"
            f"{h['recall@1%fpr']:>8.3f}{h['recall@0.1%fpr']:>8.3f}{t:>9.0f}"
        )
    print("(embedded candidate rows are validation-part figures; the last row is test)")


if __name__ == "__main__":
    main()
