"""The ml workflow from the command line as a user runs it: load, train, promote, score, retrain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import hl

pytestmark = pytest.mark.ml

SAMPLE = "4000"


def ok(*args: str, cwd: Path) -> str:
    r = hl(*args, cwd=cwd)
    assert r.returncode == 0, f"huntlab {' '.join(args)}: {r.stderr}\n{r.stdout}"
    return r.stdout


@pytest.fixture(scope="module")
def ml_ws(tmp_path_factory: pytest.TempPathFactory, urls_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("mlcli")
    ok("init", "ws", cwd=root)
    ws = root / "ws"
    out = ok("ml", "load-urls", "--source", str(urls_dir), "--sample", SAMPLE, cwd=ws)
    assert (
        f"{int(SAMPLE):,} rows into 'urls'" in out and "10,000 rows into 'popular_domains'" in out
    )
    return ws


def test_train_show_promote_score(ml_ws: Path) -> None:
    out = ok("ml", "train", "url_model", cwd=ml_ws)
    assert "registered url_model@1" in out
    report = ml_ws / "reports" / "url_model" / "v1"
    assert (report / "confusion.png").stat().st_size > 1000
    assert (report / "pr_curve.png").stat().st_size > 1000
    assert "recall" in (report / "report.md").read_text()
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["split"] == "grouped" and metrics["test"]["roc_auc"] > 0.8
    assert "url_model" in ok("ml", "models", cwd=ml_ws)
    shown = ok("ml", "show", "url_model@1", cwd=ml_ws)
    assert "challenger" in shown and "urls" in shown
    assert "now the champion" in ok("ml", "promote", "url_model@1", "--reason", "test", cwd=ml_ws)
    blocked = ml_ws / "blocked.csv"
    blocked.write_text(
        "url\nhttp://paypal.com.account-verify.tk/webscr/login.php\n"
        "https://en.wikipedia.org/wiki/Phishing\nhttp://63.247.80.138/~x/setup.exe\n"
    )
    ok("datasets", "add", "blocked", str(blocked), cwd=ml_ws)
    out = ok(
        "ml", "score", "url_model", "--data", "blocked", "--output", "blocked_scores", cwd=ml_ws
    )
    assert "scored 3 URLs with url_model@1" in out
    rows = ok(
        "sql",
        "SELECT url, predicted, malicious_score, model FROM blocked_scores "
        "ORDER BY malicious_score DESC",
        cwd=ml_ws,
    )
    assert "url_model@1" in rows and "wikipedia" in rows.splitlines()[-3]
    assert "ml.score:url_model" in ok("runs", cwd=ml_ws)


def test_retrain_decides_and_records_why(ml_ws: Path) -> None:
    if "champion" not in ok("ml", "models", cwd=ml_ws):
        ok("ml", "train", "url_model", "--promote", cwd=ml_ws)
    out = ok("ml", "retrain", "url_model", cwd=ml_ws)
    assert "promoted" in out and "url_model_holdout" in out
    shown = ok("ml", "show", "url_model@2", cwd=ml_ws)
    assert "retrain:" in shown
    decisions = ok(
        "sql", "SELECT model, challenger, promoted, reason FROM model_decisions", cwd=ml_ws
    )
    assert "url_model" in decisions
    ok("ml", "install-jobs", "--model", "url_model", cwd=ml_ws)
    out = ok("run", "retrain_url_model", cwd=ml_ws)
    assert "succeeded" in out
    models = ok("ml", "models", "url_model", cwd=ml_ws)
    assert models.count("champion") == 1


def test_cluster_and_show_suspicious_clusters(ml_ws: Path) -> None:
    out = ok("ml", "cluster", "--k", "40", "--model", "url_model", cwd=ml_ws)
    assert "k-means purity" in out and "hidden_hosts" in out
    assert "cluster_only_precision" in out and "model_recall" in out
    out = ok("ml", "clusters", "--min-confidence", "0.3", cwd=ml_ws)
    assert "largest suspicious clusters" in out
    assert any(w in out for w in ("phishing", "malware", "spam"))


def test_cluster_against_a_model_trained_without_the_held_back_domains(ml_ws: Path) -> None:
    from huntlab.ml import registry
    from huntlab.workspace import Workspace

    if "url_model" not in ok("ml", "models", cwd=ml_ws):
        ok("ml", "train", "url_model", cwd=ml_ws)
    out = ok("ml", "cluster", "--k", "40", "--fair-model", "fair_model", cwd=ml_ws)
    assert "trained fair_model@1 without the clustering's held-back domains" in out
    assert "cluster_only_precision" in out and "model_recall" in out
    ws = Workspace(ml_ws)
    fair, plain = registry.get(ws, "fair_model", 1), registry.get(ws, "url_model", 1)
    # The same split minus about 30% of the domains (train and validation both shrink).
    for part in ("train", "validation"):
        assert fair.metrics["rows"][part] < 0.85 * plain.metrics["rows"][part]
    assert fair.metrics["rows"]["test"] == plain.metrics["rows"]["test"]
    r = hl("ml", "cluster", "--model", "url_model", "--fair-model", "x", cwd=ml_ws)
    assert r.returncode == 1 and "pick one" in r.stderr


def test_errors_are_one_line(ml_ws: Path) -> None:
    r = hl("ml", "show", "nope", cwd=ml_ws)
    assert r.returncode == 1 and "not found" in r.stderr and "huntlab ml train" in r.stderr
    r = hl("ml", "train", "m2", "--data", "blocked", cwd=ml_ws)
    assert r.returncode == 1 and "label" in r.stderr
