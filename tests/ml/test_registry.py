"""The model registry on a real metadata store: versions, stages, lineage, artifacts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import inspect

from huntlab.errors import InputError
from huntlab.ml import registry
from huntlab.ml.models import UrlClassifier

pytestmark = pytest.mark.ml


@pytest.fixture(scope="module")
def small_model(url_sample: pa.Table, feature_spec) -> UrlClassifier:
    t = url_sample.slice(0, 1500)
    m = UrlClassifier(kind="lexical_gbt", task="binary", spec=feature_spec, params={"gbt_iter": 30})
    return m.fit(t["url"], np.asarray(t["label"].to_pylist(), dtype=object))


def test_migration_creates_the_models_table(empty_ws) -> None:
    from huntlab.catalog.store import HEAD_REVISION

    assert HEAD_REVISION == "0002"
    cols = {c["name"] for c in inspect(empty_ws.store.engine).get_columns("models")}
    assert {"name", "version", "params", "metrics", "training_data", "artifact", "stage"} <= cols


def test_register_versions_promote_and_load(empty_ws, small_model: UrlClassifier) -> None:
    ws = empty_ws
    r1 = registry.register(
        ws, "urlm", small_model, metrics={"test": {"roc_auc": 0.9}}, training_data={"urls": "3"}
    )
    r2 = registry.register(ws, "urlm", small_model, metrics={}, training_data={"urls": "4"})
    assert (r1.version, r2.version) == (1, 2)
    assert r1.stage == r2.stage == "challenger"
    assert (ws.root / r1.artifact).is_file() and r1.artifact.startswith("models/")
    assert registry.get(ws, "urlm").version == 2  # no champion yet: the newest
    registry.promote(ws, "urlm", 1, "first")
    assert registry.get(ws, "urlm").version == 1
    registry.promote(ws, "urlm", 2, "better on holdout")
    stages = {m.version: m.stage for m in registry.list_models(ws, "urlm")}
    assert stages == {1: "archived", 2: "champion"}
    champ = registry.get(ws, "urlm", "champion")
    assert champ.training_data == {"urls": "4"} and "better on holdout" in champ.notes
    registry.annotate(ws, "urlm", 1, "kept for audit")
    assert "kept for audit" in registry.get(ws, "urlm", 1).notes
    loaded = registry.load(ws, champ)
    urls = ["http://paypal.com.verify.tk/", "https://www.bbc.co.uk/news"]
    np.testing.assert_array_equal(loaded.predict_proba(urls), small_model.predict_proba(urls))


def test_unknown_models_and_versions_are_clear_errors(empty_ws, small_model) -> None:
    with pytest.raises(InputError, match="not found"):
        registry.get(empty_ws, "nope")
    registry.register(empty_ws, "m", small_model, metrics={}, training_data={})
    with pytest.raises(InputError, match="no version 9"):
        registry.get(empty_ws, "m", 9)
    with pytest.raises(InputError, match="invalid model name"):
        registry.register(empty_ws, "bad name", small_model, metrics={}, training_data={})
    assert registry.parse_ref("m@champion") == ("m", "champion")
    assert registry.parse_ref("m") == ("m", None)
