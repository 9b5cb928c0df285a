"""The bundled hunting jobs find what the sample generator planted."""

from __future__ import annotations

from huntlab.jobs.runner import run_job
from huntlab.sample import OUTBREAK_COUNTRY, OUTBREAK_FAMILY, SPIKE_SIGNATURE, SPIKE_VERSION


def test_rising_families_finds_the_outbreak(sample_ws) -> None:
    top = run_job(sample_ws, "rising_families", {"min_recent": "5"}, write=False).table
    first = top.slice(0, 1).to_pylist()[0]
    assert (first["family"], first["country"]) == (OUTBREAK_FAMILY, OUTBREAK_COUNTRY)
    assert first["growth"] > 2 * top.column("growth")[1].as_py()


def test_crash_rate_finds_the_bad_release(sample_ws) -> None:
    rows = run_job(sample_ws, "crash_rate_by_version", write=False).table.to_pylist()
    spike = [r for r in rows if r["product_version"] == SPIKE_VERSION]
    others = [r for r in rows if r["product_version"] != SPIKE_VERSION]
    assert spike and all(r["top_signature"] == SPIKE_SIGNATURE for r in spike)
    worst_other = max(r["crashes_per_1k_client_days"] for r in others)
    assert min(r["crashes_per_1k_client_days"] for r in spike) > 3 * worst_other


def test_prevalence_is_skewed_and_complete(sample_ws) -> None:
    t = run_job(sample_ws, "family_prevalence", write=False).table.to_pylist()
    assert len(t) >= 30
    assert t[0]["clients"] > 5 * t[len(t) // 2]["clients"]
    assert all(r["first_seen"] <= r["last_seen"] for r in t)
