"""URL models on real Spark (local[2]): same scores as embedded, pyspark.ml LR trains and scores."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huntlab.errors import EngineError, InputError

pytestmark = [pytest.mark.ml, pytest.mark.spark]

FAST_LR = {"n_hash": 2**14, "max_iter": 30}


@pytest.fixture(scope="module")
def sws(tmp_path_factory: pytest.TempPathFactory, url_sample: pa.Table, urls_dir):
    """A workspace on Spark local[2] holding the URL sample and the popular-domain ranks."""
    from huntlab.connectors.base import connector_for
    from huntlab.ml.data import read_popular
    from huntlab.workspace import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("mlspark") / "ws")
    cfg = ws.config.model_copy(deep=True)
    cfg.engine.master = "local[2]"
    cfg.engine.shuffle_partitions = 4
    ws = Workspace(ws.root, cfg)
    for name, table in (("urls", url_sample), ("popular_domains", read_popular(urls_dir))):
        connector_for(ws.ensure_managed(name)).write(table, "overwrite")
    return ws


@pytest.fixture(scope="module")
def champion(sws):
    from huntlab.ml import registry
    from huntlab.ml.train import train_model

    res = train_model(sws, "urlm", "urls", kinds=["blend"], sample=2500, params={"gbt_iter": 40})
    return registry.promote(sws, "urlm", res.record.version, "test")


def test_scores_match_on_both_engines(sws, champion) -> None:
    from huntlab.ml import registry
    from huntlab.ml.score import score_dataset
    from huntlab.ml.spark_ml import score_on_spark

    emb = score_dataset(sws, champion, registry.load(sws, champion), "urls", "s_emb")
    spk = score_on_spark(sws, champion, "urls", "s_spark")
    assert emb.rows == spk.rows > 3000 and emb.flagged == spk.flagged
    read = sws.engine("duckdb").sql
    a = read("SELECT * FROM s_emb ORDER BY url, known_label, known_collection")
    b = read("SELECT * FROM s_spark ORDER BY url, known_label, known_collection")
    assert a.schema.names == b.schema.names and a.num_rows == b.num_rows
    for col in a.schema.names:
        x, y = a[col].to_numpy(zero_copy_only=False), b[col].to_numpy(zero_copy_only=False)
        if x.dtype.kind == "f":
            assert np.max(np.abs(x - y)) <= 1e-9, col
        else:
            assert (x == y).all(), col


@pytest.fixture(scope="module")
def spark_lr(sws):
    from huntlab.ml.spark_train import train_on_spark

    return train_on_spark(sws, "sparkm", "urls", params=FAST_LR)


def test_spark_lr_metrics_stay_above_floor(spark_lr) -> None:
    m = spark_lr.test
    # Measured on this sample (grouped split, 775 test rows): macro F1 0.760, ROC-AUC 0.919,
    # recall@1%FPR 0.488.
    assert spark_lr.record.kind == "spark_lr" and spark_lr.record.metrics["split"] == "grouped"
    assert m["macro_f1"] > 0.70 and m["roc_auc"] > 0.88 and m["recall_at_0.01_fpr"] > 0.38
    assert set(m["per_class"]) == {"benign", "phishing", "malware", "spam"}
    assert (spark_lr.report.parent / "pr_curve.png").stat().st_size > 1000
    rows = spark_lr.record.metrics["rows"]
    assert rows["train"] > 2 * rows["test"] > 0


def test_spark_lr_binary_task(sws) -> None:
    from huntlab.ml.spark_train import train_on_spark

    res = train_on_spark(sws, "sparkb", "urls", task="binary", params=FAST_LR)
    # Measured: macro F1 0.823, ROC-AUC 0.909, recall@1%FPR 0.492.
    assert res.record.params["classes"] == ["benign", "malicious"]
    assert res.test["macro_f1"] > 0.76 and res.test["roc_auc"] > 0.87


def test_spark_lr_reloads_and_scores(sws, spark_lr) -> None:
    from huntlab.ml import registry
    from huntlab.ml.spark_ml import SparkUrlModel, score_on_spark

    rec = registry.get(sws, "sparkm")
    assert rec.artifact.endswith(".spark") and (sws.root / rec.artifact / "pipeline").is_dir()
    assert SparkUrlModel.load(sws.root / rec.artifact).classes_ == rec.params["classes"]
    res = score_on_spark(sws, rec, "urls", "s_lr")
    t = sws.engine("duckdb").sql("SELECT * FROM s_lr")
    assert res.rows == t.num_rows > 3000
    assert {"url", "predicted", "malicious_score", "flagged", "p_benign", "model"} <= set(
        t.schema.names
    )
    assert set(t["predicted"].to_pylist()) <= set(rec.params["classes"])
    pb = t["p_benign"].to_numpy()
    assert np.allclose(t["malicious_score"].to_numpy(), 1 - pb)
    # Accuracy on the whole sample (mostly training rows) is well above chance.
    known = np.asarray(t["known_label"].to_pylist(), dtype=object)
    assert np.mean(np.asarray(t["predicted"].to_pylist(), dtype=object) == known) > 0.7


def test_spark_model_on_embedded_engine_is_one_clear_line(sws, spark_lr) -> None:
    from huntlab.ml import registry

    with pytest.raises(EngineError, match="scores only on Spark") as err:
        registry.load(sws, registry.get(sws, "sparkm"))
    assert "--engine spark" in str(err.value) and "\n" not in str(err.value)


def test_cli_refuses_spark_model_on_embedded_and_unknown_engine(sws, spark_lr) -> None:
    from tests.cli.test_cli import hl

    r = hl("ml", "score", "sparkm", "--data", "urls", cwd=sws.root)
    err = r.stderr.strip()
    assert r.returncode != 0 and "\n" not in err
    assert "scores only on Spark" in err and "--engine spark" in err
    r = hl("ml", "score", "sparkm", "--data", "urls", "--engine", "flink", cwd=sws.root)
    assert r.returncode != 0 and "unknown engine 'flink'" in r.stderr


def test_unknown_engine_and_column_are_refused(sws, champion) -> None:
    from huntlab.cli.ml import _engine
    from huntlab.ml.spark_ml import score_on_spark

    with pytest.raises(InputError, match="--engine embedded or spark"):
        _engine("flink")
    with pytest.raises(InputError, match="no column 'link'"):
        score_on_spark(sws, champion, "urls", "s_bad", column="link")


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(st.characters(codec="utf-8"), max_size=60), min_size=1, max_size=40))
def test_spark_features_equal_embedded_features(sws, feature_spec, texts: list[str]) -> None:
    """Any strings (outside input) get the same features on Spark as FeatureSpec.compute."""
    from huntlab.ml.spark_ml import _spark, featurize

    spark = _spark(sws).spark
    df = spark.createDataFrame(pa.table({"url": pa.array(texts, pa.string())}))
    got = featurize(df.repartition(2), feature_spec, 7, []).toArrow()
    want = feature_spec.compute(pa.array(texts, pa.string()))
    order = {t: i for i, t in enumerate(texts)}
    idx = [order[u] for u in got["url"].to_pylist()]
    lex = np.asarray(got["lex"].to_pylist(), dtype=np.float64)
    assert np.array_equal(lex, want.lexical.astype(np.float64)[idx])
    assert got["text"].to_pylist() == [want.text[i] for i in idx]
