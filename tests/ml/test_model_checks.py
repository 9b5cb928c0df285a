"""The check suite every URL model passes: contract, pickling, determinism, a quality floor."""

from __future__ import annotations

import copy
import io

import joblib
import numpy as np
import pyarrow as pa
import pytest

from huntlab.ml.metrics import evaluate
from huntlab.ml.models import BALANCED_GBT_WEIGHT, KINDS, UrlClassifier
from huntlab.ml.splits import split_indices

pytestmark = pytest.mark.ml

CASES = [(k, t) for k in KINDS for t in ("multiclass", "binary")]
# Floors a few points under what was measured on this 4k sample (grouped split, urlfeat-2):
# ROC-AUC 0.890-0.919, macro F1 0.68-0.76 (multiclass) and 0.79-0.84 (binary) across the kinds.
# A broken feature or model falls well below them (a constant scorer gives 0.5).
AUC_FLOOR = 0.87
MACRO_F1_FLOOR = {"multiclass": 0.65, "binary": 0.76}
# The balanced kinds measured higher on the same sample: macro F1 0.78/0.81 (multiclass) and
# 0.85 (binary), ROC-AUC 0.91-0.93, against ngram_linear's 0.68 with l2-normalized n-grams; a
# floor between the two catches a regression to the old recipe.
BALANCED_FLOOR = {"multiclass": (0.75, 0.90), "binary": (0.82, 0.89)}


@pytest.fixture(scope="module")
def prepared(url_sample: pa.Table, feature_spec):
    feats = feature_spec.compute(url_sample["url"])
    labels = np.asarray(url_sample["label"].to_pylist(), dtype=object)
    groups = np.asarray(feats.reg_domains.to_pylist(), dtype=object)
    train, _val, test = split_indices(groups, labels, "grouped", seed=7)
    return feats, labels, train, test


@pytest.fixture(scope="module")
def fitted(prepared, feature_spec) -> dict:
    feats, labels, train, _ = prepared
    out = {}
    for kind, task in CASES:
        m = UrlClassifier(kind=kind, task=task, seed=7, spec=feature_spec)
        out[kind, task] = m.fit_features(feats.take(train), labels[train])
    return out


@pytest.mark.parametrize(("kind", "task"), CASES)
def test_fit_score_contract(fitted, prepared, kind: str, task: str) -> None:
    feats, labels, _, test = prepared
    m = fitted[kind, task]
    expected = {
        "multiclass": ["benign", "malware", "phishing", "spam"],
        "binary": ["benign", "malicious"],
    }[task]
    assert m.classes_ == expected
    p = m.predict_proba_features(feats.take(test[:50]))
    assert p.shape == (50, len(expected))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    score = m.malicious_score(p)
    assert ((score >= 0) & (score <= 1)).all()
    urls = ["http://paypal.com.secure-verify.tk/login.php", "https://en.wikipedia.org/wiki/URL"]
    assert set(m.predict(urls).tolist()) <= set(expected)


@pytest.mark.parametrize(("kind", "task"), CASES)
def test_quality_floor_on_grouped_split(fitted, prepared, kind: str, task: str) -> None:
    feats, labels, _, test = prepared
    m = fitted[kind, task]
    metrics = evaluate(m, m.predict_proba_features(feats.take(test)), labels[test])
    assert metrics["roc_auc"] >= AUC_FLOOR, metrics["roc_auc"]
    assert metrics["macro_f1"] >= MACRO_F1_FLOOR[task], metrics["macro_f1"]


@pytest.mark.parametrize("task", ["multiclass", "binary"])
@pytest.mark.parametrize("kind", ["balanced_lr", "balanced_blend"])
def test_balanced_kinds_keep_their_higher_floor(fitted, prepared, kind: str, task: str) -> None:
    feats, labels, _, test = prepared
    m = fitted[kind, task]
    metrics = evaluate(m, m.predict_proba_features(feats.take(test)), labels[test])
    f1_floor, auc_floor = BALANCED_FLOOR[task]
    assert metrics["macro_f1"] >= f1_floor, metrics["macro_f1"]
    assert metrics["roc_auc"] >= auc_floor, metrics["roc_auc"]


def test_balanced_blend_weights_its_two_parts(fitted, prepared) -> None:
    feats, _labels, _, test = prepared
    tf = feats.take(test[:200])
    both = fitted["balanced_blend", "multiclass"]
    lr, gbt = copy.copy(both), copy.copy(both)
    lr.kind, lr._gbt = "balanced_lr", None
    gbt.kind, gbt._balanced = "lexical_gbt", None
    w = BALANCED_GBT_WEIGHT
    expected = (1 - w) * lr.predict_proba_features(tf) + w * gbt.predict_proba_features(tf)
    np.testing.assert_allclose(both.predict_proba_features(tf), expected, atol=1e-12)


@pytest.mark.parametrize(("kind", "task"), CASES)
def test_pickling_round_trip(fitted, kind: str, task: str) -> None:
    m = fitted[kind, task]
    buf = io.BytesIO()
    joblib.dump(m, buf)
    buf.seek(0)
    back = joblib.load(buf)
    urls = ["http://63.247.80.138/~x/chase/", "http://bbc.co.uk/news/world", "x"]
    np.testing.assert_array_equal(back.predict_proba(urls), m.predict_proba(urls))


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_model(prepared, feature_spec, fitted, kind: str) -> None:
    feats, labels, train, test = prepared
    again = UrlClassifier(kind=kind, task="multiclass", seed=7, spec=feature_spec)
    again.fit_features(feats.take(train), labels[train])
    tf = feats.take(test[:300])
    np.testing.assert_array_equal(
        again.predict_proba_features(tf), fitted[kind, "multiclass"].predict_proba_features(tf)
    )


def test_unfitted_model_and_single_class_are_clear_errors(feature_spec) -> None:
    from huntlab.errors import InputError

    m = UrlClassifier(spec=feature_spec)
    with pytest.raises(InputError, match="not fitted"):
        m.predict(["http://a.com/"])
    with pytest.raises(InputError, match="single class"):
        m.fit(["http://a.com/", "http://b.com/"], ["benign", "benign"])
    with pytest.raises(InputError, match="unknown model kind"):
        UrlClassifier(kind="forest")


def test_class_bias_is_tuned_on_validation_and_survives_pickling(prepared, feature_spec) -> None:
    feats, labels, train, _test = prepared
    groups = np.asarray(feats.reg_domains.to_pylist(), dtype=object)
    _tr, val, _te = split_indices(groups, labels, "grouped", seed=7)
    m = UrlClassifier(kind="ngram_linear", seed=7, spec=feature_spec)
    m.fit_features(feats.take(train), labels[train])
    vf = feats.take(val)
    plain = evaluate(m, m.predict_proba_features(vf), labels[val])["macro_f1"]
    bias = m.tune_class_bias(vf, labels[val])
    assert bias.shape == (4,) and np.abs(bias).max() <= 2.0
    tuned = evaluate(m, m.predict_proba_features(vf), labels[val])["macro_f1"]
    assert tuned >= plain  # coordinate ascent starts from no bias, so it can only gain on val
    np.testing.assert_allclose(m.predict_proba_features(vf).sum(axis=1), 1.0, atol=1e-9)
    back = joblib.load(_dumped(m))
    np.testing.assert_array_equal(back.class_bias_, bias)


def test_a_model_pickled_before_class_bias_existed_still_scores(fitted) -> None:
    m = joblib.load(_dumped(fitted["blend", "multiclass"]))
    m.__dict__.pop("class_bias_", None)  # what an older artifact's state looks like
    p = m.predict_proba(["http://63.247.80.138/~x/chase/"])
    assert p.shape == (1, 4)


@pytest.mark.parametrize("kind", ["ngram_linear", "lexical_gbt", "blend"])
def test_an_artifact_saved_before_the_balanced_kinds_scores_the_same(fitted, kind: str) -> None:
    m = fitted[kind, "multiclass"]
    old = joblib.load(_dumped(m))
    for attr in ("_balanced", "_bal_scaler"):  # an older artifact's state lacks them
        old.__dict__.pop(attr, None)
    urls = ["http://63.247.80.138/~x/chase/", "http://bbc.co.uk/news/world", "x"]
    np.testing.assert_array_equal(old.predict_proba(urls), m.predict_proba(urls))


def test_an_urlfeat_1_model_keeps_scoring_as_trained() -> None:
    from huntlab.ml.features import FeatureSpec

    feats_old = FeatureSpec(version="urlfeat-1")
    urls = ["http://a.example.com/login.php", "http://en.wikipedia.org/wiki/URL"] * 20
    for kind in ("ngram_linear", "balanced_lr"):
        m = UrlClassifier(kind=kind, seed=7, spec=feats_old)
        m.fit(urls, ["phishing", "benign"] * 20)
        back = joblib.load(_dumped(m))
        assert back.spec.version == "urlfeat-1"
        np.testing.assert_array_equal(back.predict(urls[:2]), ["phishing", "benign"])


def _dumped(model: UrlClassifier) -> io.BytesIO:
    buf = io.BytesIO()
    joblib.dump(model, buf)
    buf.seek(0)
    return buf
