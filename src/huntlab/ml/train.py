"""Train URL models on a workspace dataset: split, fit candidates, pick on validation, register."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from huntlab.connectors.base import connector_for
from huntlab.errors import InputError
from huntlab.ml.features import FeatureSpec, UrlFeatures
from huntlab.ml.metrics import FPR_POINTS, evaluate, threshold_for_fpr
from huntlab.ml.models import BENIGN, DEFAULT_KINDS, UrlClassifier, require_sklearn
from huntlab.ml.splits import split_indices

if TYPE_CHECKING:
    from huntlab.ml.registry import ModelRecord
    from huntlab.workspace import Workspace

POPULAR_DATASET = "popular_domains"


@dataclass
class LabeledUrls:
    """URLs with labels read from the repository, with the dataset versions they came from."""

    urls: pa.ChunkedArray
    labels: np.ndarray
    collections: np.ndarray
    versions: dict[str, str | None] = field(default_factory=dict)


def read_labeled(
    ws: Workspace, dataset: str, sample: int | None = None, seed: int = 7
) -> LabeledUrls:
    """Read `url` and `label` (and `collection` if present) columns of a dataset."""
    conn = connector_for(ws.store.get_dataset(dataset))
    names = conn.schema().names
    missing = [c for c in ("url", "label") if c not in names]
    if missing:
        raise InputError(
            f"dataset '{dataset}' lacks column(s) {missing}; it has {names}",
            "Load labeled URLs with `huntlab ml load-urls`",
        )
    table = conn.read(columns=[c for c in ("url", "label", "collection") if c in names])
    table = table.filter(pa.compute.is_valid(table["label"]))
    if sample and sample < table.num_rows:
        rng = np.random.default_rng(seed)
        table = table.take(np.sort(rng.choice(table.num_rows, sample, replace=False)))
    coll = (
        np.asarray(table["collection"].to_pylist(), dtype=object)
        if "collection" in names
        else np.full(table.num_rows, dataset, dtype=object)
    )
    return LabeledUrls(
        table["url"],
        np.asarray(table["label"].to_pylist(), dtype=object),
        coll,
        {dataset: conn.version()},
    )


def feature_spec(ws: Workspace, popular: str | None = POPULAR_DATASET) -> tuple[FeatureSpec, dict]:
    """The feature spec with popularity ranks from a dataset (domain, rank) if it exists."""
    from huntlab.ml.domains import popularity_ranks

    if not popular or not ws.store.has_dataset(popular):
        return FeatureSpec(), {}
    conn = connector_for(ws.store.get_dataset(popular))
    t = conn.read(columns=["domain", "rank"]).sort_by("rank")
    return FeatureSpec(popular=popularity_ranks(t["domain"].to_pylist())), {popular: conn.version()}


def fit_candidates(
    feats: UrlFeatures, labels: np.ndarray, task: str, kinds: list[str], seed: int, params: dict
) -> dict[str, UrlClassifier]:
    """Fit each kind; the blends reuse the fitted linear and boosted parts instead of refitting."""
    blends = {"blend": "ngram_linear", "balanced_blend": "balanced_lr"}
    needed = set(kinds) | {blends[k] for k in kinds if k in blends}
    if needed & set(blends):
        needed.add("lexical_gbt")
    base: dict[str, UrlClassifier] = {}
    for part in ("ngram_linear", "lexical_gbt", "balanced_lr"):
        if part in needed:
            base[part] = UrlClassifier(kind=part, task=task, seed=seed, params=params)
            base[part].spec = feats.spec or FeatureSpec()
            base[part].fit_features(feats, labels)
    out = {}
    for kind in kinds:
        if kind in blends:
            out[kind] = copy.copy(base[blends[kind]])
            out[kind].kind = kind
            out[kind]._gbt = base["lexical_gbt"]._gbt
        elif kind in base:
            out[kind] = base[kind]
    return out


def primary(metrics: dict[str, Any], task: str) -> float:
    """The number a candidate is chosen by: macro F1 (multiclass) or average precision (binary)."""
    return float(metrics["macro_f1"] if task == "multiclass" else metrics["average_precision"])


def val_thresholds(model: UrlClassifier, proba: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Scores above which 1% and 0.1% of validation benign URLs fall."""
    benign = model.malicious_score(proba)[labels == BENIGN]
    return {f"val_fpr_{f:g}": threshold_for_fpr(benign, f) for f in FPR_POINTS}


@dataclass
class TrainResult:
    """A trained, evaluated and registered model."""

    record: ModelRecord
    candidates: dict[str, dict[str, Any]]
    test: dict[str, Any]
    report: Path | None = None


def train_model(
    ws: Workspace,
    name: str,
    dataset: str,
    *,
    task: str = "multiclass",
    kinds: list[str] | None = None,
    split: str = "grouped",
    seed: int = 7,
    sample: int | None = None,
    params: dict[str, Any] | None = None,
    popular: str | None = POPULAR_DATASET,
    exclude_domains: set[str] | None = None,
    run_id: int | None = None,
) -> TrainResult:
    """Split (by registered domain by default), fit candidates, choose on validation, register."""
    from huntlab.ml import registry
    from huntlab.ml.evaluate import model_report

    require_sklearn()
    data = read_labeled(ws, dataset, sample, seed)
    spec, pop_versions = feature_spec(ws, popular)
    feats = spec.compute(data.urls)
    groups = np.asarray(feats.reg_domains.to_pylist(), dtype=object)
    train, val, test = split_indices(groups, data.labels, split, seed=seed)
    if exclude_domains:
        # Rows of a fixed evaluation set's domains never reach training (no leak into the judge).
        # Validation picks the model, its class offsets and thresholds: keep them out there too.
        excluded = list(exclude_domains)
        train = train[~np.isin(groups[train], excluded)]
        val = val[~np.isin(groups[val], excluded)]
    kinds = kinds or DEFAULT_KINDS
    fitted = fit_candidates(feats.take(train), data.labels[train], task, kinds, seed, params or {})
    scored: dict[str, dict[str, Any]] = {}
    vfeats = feats.take(val)
    for kind, model in fitted.items():
        if (params or {}).get("tune_bias", True):
            model.tune_class_bias(vfeats, data.labels[val])  # validation only, never test
        scored[kind] = evaluate(model, model.predict_proba_features(vfeats), data.labels[val])
    best_kind = max(scored, key=lambda k: primary(scored[k], task))
    best = fitted[best_kind]
    thresholds = val_thresholds(best, best.predict_proba_features(vfeats), data.labels[val])
    tfeats = feats.take(test)
    test_proba = best.predict_proba_features(tfeats)
    test_m = evaluate(best, test_proba, data.labels[test], thresholds)
    metrics = {
        "split": split,
        "chosen_by": "validation macro F1" if task == "multiclass" else "validation AP",
        "validation": {k: _brief(v) for k, v in scored.items()},
        "test": test_m,
        "thresholds": thresholds,
        "rows": {"train": len(train), "validation": len(val), "test": len(test)},
    }
    lineage = {**data.versions, **pop_versions}
    rec = registry.register(ws, name, best, metrics=metrics, training_data=lineage, run_id=run_id)
    y_bin = (data.labels[test] != BENIGN).astype(int)
    report = model_report(ws, rec, test_m, {best_kind: (y_bin, best.malicious_score(test_proba))})
    return TrainResult(rec, scored, test_m, report)


def _brief(m: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in m.items() if k not in ("confusion",)}
