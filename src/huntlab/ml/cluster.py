"""Clusters of the web: hosts grouped by their URL features (k-means) and by shared kit paths.

Each cluster is labeled by the majority of its members' known labels, with a confidence; held-back
labels measure whether the propagated labels are right (purity, precision on unseen hosts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from huntlab.ml.features import LEXICAL_FEATURES, FeatureSpec
from huntlab.ml.models import BENIGN, require_sklearn
from huntlab.ml.splits import domain_unit

# Shared path templates (digits and hex runs folded) seen on several unrelated registered domains:
# the same phishing kit or malware drop path deployed on many compromised sites.
KIT_SQL = r"""
WITH t AS (
    SELECT host, reg_domain,
        regexp_replace(regexp_replace(lower(path), '[0-9a-f]{8,}', 'H', 'g'), '[0-9]+', '0', 'g')
            AS template
    FROM hosts_paths
)
SELECT template, count(DISTINCT reg_domain) AS domains, list(DISTINCT host) AS hosts
FROM t
WHERE length(template) >= 12 AND len(string_split(trim(template, '/'), '/')) >= 2
GROUP BY template
HAVING count(DISTINCT reg_domain) >= $min_domains
ORDER BY domains DESC
"""


@dataclass
class Clustering:
    """Host clusters with labels; `table` is what gets written as a dataset."""

    table: pa.Table
    purity: float
    held_back: dict[str, Any] = field(default_factory=dict)


def _hidden(reg_domains: np.ndarray, seed: int, hold_back: float) -> np.ndarray:
    """Which registered domains' labels the clustering holds back (a stable hash per domain)."""
    return domain_unit(reg_domains, seed + 11) < hold_back


def held_back_domains(reg_domains: list[str | None], seed: int = 7, hold_back: float = 0.3) -> set:
    """The registered domains `cluster_hosts(seed=, hold_back=)` hides: keep them out of the
    training of a model the clusters are compared with, or the comparison flatters the model."""
    doms = np.asarray([d for d in set(reg_domains) if d is not None], dtype=object)
    return set(doms[_hidden(doms, seed, hold_back)].tolist()) if len(doms) else set()


def _host_frame(
    urls: pa.ChunkedArray, labels: np.ndarray | None, spec: FeatureSpec, scores: Any = None
) -> Any:
    """Per-host mean features, URL count, majority known label and highest model score."""
    import pandas as pd

    feats = spec.compute(urls)
    df = pd.DataFrame(feats.lexical, columns=LEXICAL_FEATURES)
    df["host"] = feats.hosts.to_pylist()
    df["reg_domain"] = feats.reg_domains.to_pylist()
    df["label"] = labels if labels is not None else None
    agg = df.groupby("host", sort=True)[LEXICAL_FEATURES].mean()
    agg["log_urls"] = np.log1p(df.groupby("host", sort=True).size())
    agg["reg_domain"] = df.groupby("host", sort=True)["reg_domain"].first()
    agg["n_urls"] = df.groupby("host", sort=True).size()
    if scores is not None:
        df["score"] = scores
        agg["model_score"] = df.groupby("host", sort=True)["score"].max()
    if labels is not None:
        agg["label"] = df.groupby("host", sort=True)["label"].agg(lambda s: s.mode().iloc[0])
    else:
        agg["label"] = None
    parts = pa.table({"host": feats.hosts, "reg_domain": feats.reg_domains})
    return agg, parts, feats


def _majority(labels: list[Any], n_classes: int) -> tuple[str | None, float, dict[str, int]]:
    known = [x for x in labels if isinstance(x, str)]  # pandas turns a missing label into NaN
    if not known:
        return None, 0.0, {}
    vals, counts = np.unique(np.asarray(known, dtype=object), return_counts=True)
    i = int(counts.argmax())
    # Laplace-smoothed share: a cluster of 2 agreeing members is not as sure as one of 200.
    conf = (counts[i] + 1) / (counts.sum() + n_classes)
    return str(vals[i]), float(conf), {str(v): int(c) for v, c in zip(vals, counts)}


def cluster_hosts(
    urls: pa.ChunkedArray,
    labels: np.ndarray | None,
    spec: FeatureSpec,
    *,
    k: int = 200,
    seed: int = 7,
    hold_back: float = 0.3,
    min_kit_domains: int = 3,
    url_scores: np.ndarray | None = None,
    threshold: float = 0.5,
) -> Clustering:
    """K-means over host features plus kit-path clusters; labels from visible members only.

    With `url_scores` (a per-URL model's P(malicious)) the held-back report also counts the
    malicious hosts that cluster labels find and the model misses at `threshold`.
    """
    require_sklearn()
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.preprocessing import StandardScaler

    agg, parts, feats = _host_frame(urls, labels, spec, url_scores)
    x = StandardScaler().fit_transform(agg[[*LEXICAL_FEATURES, "log_urls"]].to_numpy())
    k = max(2, min(k, len(agg) // 5 or 2))
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    agg["cluster"] = km.fit_predict(x)
    hidden = _hidden(agg["reg_domain"].to_numpy(dtype=object), seed, hold_back)
    agg["visible_label"] = np.where(hidden, None, agg["label"].to_numpy(dtype=object))
    n_classes = len({x for x in agg["label"] if x is not None}) or 1
    rows = []
    for cid, members in agg.groupby("cluster"):
        rows.append(_row(f"km-{cid}", "kmeans", members, n_classes))
    kits = _kit_clusters(parts, feats, min_kit_domains)
    for i, (template, hosts) in enumerate(kits):
        members = agg.loc[agg.index.intersection(hosts)]
        rows.append(_row(f"kit-{i}", "kit_path", members, n_classes, f"path template {template}"))
    table = pa.Table.from_pylist(rows)
    held = _held_back(agg, hidden, n_classes)
    if url_scores is not None:
        held["against_model"] = _against_model(agg, hidden, n_classes, threshold)
    return Clustering(table, _purity(agg), held)


def _row(cid: str, method: str, m: Any, n_classes: int, evidence: str = "") -> dict[str, Any]:
    label, conf, counts = _majority(m["visible_label"].tolist(), n_classes)
    sample = m.sort_values("n_urls", ascending=False).index[:5].tolist()
    return {
        "cluster_id": cid,
        "method": method,
        "size": len(m),
        "n_urls": int(m["n_urls"].sum()),
        "members_sample": sample,
        "label": label,
        "confidence": conf,
        "malicious_share": _mal_share(counts),
        "evidence": (evidence + "; " if evidence else "") + f"visible labels {counts}",
    }


def _mal_share(counts: dict[str, int]) -> float | None:
    total = sum(counts.values())
    return None if not total else 1.0 - counts.get(BENIGN, 0) / total


def _kit_clusters(parts: pa.Table, feats: Any, min_domains: int) -> list[tuple[str, list[str]]]:
    from huntlab.ml.canonical import canonicalize, connect

    con = connect()
    try:
        canon = canonicalize(con, pa.chunked_array([pa.array(feats.text, pa.large_string())]))
        con.register(
            "hosts_paths",
            pa.table(
                {"host": parts["host"], "reg_domain": parts["reg_domain"], "path": canon["path"]}
            ),
        )
        res = con.execute(KIT_SQL, {"min_domains": min_domains}).fetchall()
    finally:
        con.close()
    return [(t, hosts) for t, _n, hosts in res]


def _purity(agg: Any) -> float:
    """Share of labeled hosts whose label is their k-means cluster's majority label."""
    known = agg[agg["label"].notna()]
    if known.empty:
        return float("nan")
    top = known.groupby("cluster")["label"].agg(lambda s: s.value_counts().iloc[0]).sum()
    return float(top / len(known))


def _held_back(agg: Any, hidden: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Propagate visible labels to hidden hosts through their cluster; score the guesses."""
    labels = {}
    for cid, m in agg.groupby("cluster"):
        labels[cid] = _majority(m["visible_label"].tolist(), n_classes)[:2]
    h = agg[hidden & agg["label"].notna()]
    if h.empty:
        return {}
    guess = np.array([labels[c][0] for c in h["cluster"]], dtype=object)
    conf = np.array([labels[c][1] for c in h["cluster"]])
    truth = h["label"].to_numpy(dtype=object)
    out: dict[str, Any] = {"hidden_hosts": int(len(h))}
    for floor in (0.5, 0.8, 0.9):
        sel = (conf >= floor) & np.array([isinstance(g, str) for g in guess], dtype=bool)
        mal_guess = sel & (guess != BENIGN)
        mal_true = truth != BENIGN
        out[f"conf>={floor}"] = {
            "covered": float(sel.mean()),
            "label_accuracy": float((guess[sel] == truth[sel]).mean()) if sel.any() else None,
            "malicious_precision": float(mal_true[mal_guess].mean()) if mal_guess.any() else None,
            "malicious_recall": float(mal_guess[mal_true].mean()) if mal_true.any() else None,
        }
    return out


def _against_model(agg: Any, hidden: np.ndarray, n_classes: int, threshold: float) -> dict:
    """On held-back hosts: what cluster labels (confidence >= 0.8) add to the per-URL model."""
    labels = {
        c: _majority(m["visible_label"].tolist(), n_classes)[:2] for c, m in agg.groupby("cluster")
    }
    h = agg[hidden & agg["label"].notna()]
    truth_mal = h["label"].to_numpy(dtype=object) != BENIGN
    model_flag = h["model_score"].to_numpy() >= threshold
    guess = [labels[c] for c in h["cluster"]]
    cluster_flag = np.array([isinstance(g, str) and g != BENIGN and c >= 0.8 for g, c in guess])
    only = cluster_flag & ~model_flag
    conf = np.array([c for _g, c in guess])
    is_mal = np.array([isinstance(g, str) and g != BENIGN for g, _c in guess], dtype=bool)
    by_conf = {}
    for floor in (0.8, 0.9, 0.95):
        extra = is_mal & (conf >= floor) & ~model_flag
        by_conf[f"conf>={floor}"] = {
            "cluster_only_flagged": int(extra.sum()),
            "cluster_only_malicious": int((extra & truth_mal).sum()),
            "cluster_only_precision": float(truth_mal[extra].mean()) if extra.any() else None,
        }
    return {
        "by_confidence": by_conf,
        "threshold": threshold,
        "malicious_hosts": int(truth_mal.sum()),
        "model_recall": float(model_flag[truth_mal].mean()) if truth_mal.any() else None,
        "model_precision": float(truth_mal[model_flag].mean()) if model_flag.any() else None,
        "cluster_only_flagged": int(only.sum()),
        "cluster_only_malicious": int((only & truth_mal).sum()),
        "cluster_only_precision": float(truth_mal[only].mean()) if only.any() else None,
        "combined_recall": float((model_flag | cluster_flag)[truth_mal].mean())
        if truth_mal.any()
        else None,
    }
