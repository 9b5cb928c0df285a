"""Clusters of the web: k-means host clusters, kit-path clusters, purity and held-back labels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from huntlab.ml.cluster import cluster_hosts, held_back_domains
from huntlab.ml.features import FeatureSpec

pytestmark = pytest.mark.ml


def test_clusters_of_the_sample_are_purer_than_chance(url_sample: pa.Table, feature_spec) -> None:
    labels = np.asarray(url_sample["label"].to_pylist(), dtype=object)
    res = cluster_hosts(url_sample["url"], labels, feature_spec, k=60, seed=7)
    t = res.table
    assert {
        "cluster_id",
        "method",
        "size",
        "members_sample",
        "label",
        "confidence",
        "evidence",
    } <= set(t.column_names)
    # Chance purity is the share of the largest class among URLs (benign, 0.375 here); measured
    # k-means purity on this sample is 0.72.
    _values, counts = np.unique(labels, return_counts=True)
    chance = counts.max() / counts.sum()
    assert res.purity > chance + 0.25, (res.purity, chance)
    assert 0 < res.held_back["hidden_hosts"]
    # The domains a fair comparison keeps out of training are exactly the hidden hosts' domains.
    feats = feature_spec.compute(url_sample["url"])
    held = held_back_domains(feats.reg_domains.to_pylist(), seed=7)
    hosts = {h for h, d in zip(feats.hosts.to_pylist(), feats.reg_domains.to_pylist()) if d in held}
    assert res.held_back["hidden_hosts"] == len(hosts)
    assert res.held_back["conf>=0.5"]["label_accuracy"] > 0.6
    sizes = [r["size"] for r in t.to_pylist() if r["method"] == "kmeans"]
    assert sum(sizes) == len(set(feature_spec.compute(url_sample["url"]).hosts.to_pylist()))


def test_a_kit_path_on_several_domains_is_one_cluster() -> None:
    kit = "/wp-content/plugins/s/anmelden.php?id={}"
    urls = [f"http://site{i}.example{i}.com" + kit.format(i * 7) for i in range(4)]
    urls += [f"http://blog{i}.org/about/team-{i}" for i in range(30)]
    labels = np.asarray(["phishing"] * 4 + ["benign"] * 30, dtype=object)
    res = cluster_hosts(
        pa.chunked_array([pa.array(urls)]), labels, FeatureSpec(), k=3, hold_back=0.0
    )
    kits = [r for r in res.table.to_pylist() if r["method"] == "kit_path"]
    kits = [r for r in kits if "anmelden" in r["evidence"]]  # the shared /about/team-0 is one too
    assert len(kits) == 1
    assert kits[0]["size"] == 4 and kits[0]["label"] == "phishing"
    assert "anmelden.php" in kits[0]["evidence"]


def test_cluster_labels_against_a_model_that_flags_nothing(url_sample: pa.Table, feature_spec):
    labels = np.asarray(url_sample["label"].to_pylist(), dtype=object)
    zeros = np.zeros(url_sample.num_rows)
    res = cluster_hosts(
        url_sample["url"], labels, feature_spec, k=60, url_scores=zeros, threshold=0.5
    )
    vs = res.held_back["against_model"]
    assert vs["model_recall"] == 0.0 and vs["model_precision"] is None
    # Everything found is found by the clusters alone, at the precision measured for them.
    assert vs["cluster_only_malicious"] > 0
    assert vs["combined_recall"] == vs["cluster_only_malicious"] / vs["malicious_hosts"]
    assert vs["cluster_only_precision"] > 0.8
    by = vs["by_confidence"]
    assert by["conf>=0.8"]["cluster_only_flagged"] == vs["cluster_only_flagged"]
    # A stricter confidence floor can only flag a subset.
    assert by["conf>=0.95"]["cluster_only_flagged"] <= by["conf>=0.9"]["cluster_only_flagged"]
    assert by["conf>=0.9"]["cluster_only_flagged"] <= by["conf>=0.8"]["cluster_only_flagged"]
