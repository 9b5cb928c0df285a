"""One check suite for every detector: contract, pickling round trip, determinism with a seed."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huntlab.errors import InputError
from huntlab.stream.detectors import Population, make_detector, score_from_z

pytestmark = pytest.mark.stream

NAMES = ["seasonal", "ewma", "knn", "context", "context-rest", "robust", "ensemble"]


def series(n: int = 600, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A daily-seasonal noisy series sampled every 15 minutes."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 900.0
    x = 100 + 20 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 2, n)
    return t, x


@pytest.mark.parametrize("name", NAMES)
def test_contract_scores_in_range_and_scoring_does_not_learn(name: str) -> None:
    det = make_detector(name, seed=3)
    t, x = series()
    for ti, xi in zip(t, x):
        s1 = det.score_one(ti, xi)
        s2 = det.score_one(ti, xi)
        assert s1 == s2 and 0.0 <= s1 < 1.0
        assert math.isfinite(det.expected_one(ti))
        det.learn_one(ti, xi)
    assert det.seen == len(x)
    assert det.explain(t[-1], x[-1])


@pytest.mark.parametrize("name", NAMES)
def test_a_spike_scores_above_everything_before_it(name: str) -> None:
    det = make_detector(name, seed=3)
    t, x = series()
    before = [det.update(ti, xi) for ti, xi in zip(t, x)]
    spike = det.score_one(t[-1] + 900, 400.0)
    assert spike > max(before[100:])


@pytest.mark.parametrize("name", NAMES)
def test_pickling_round_trip_continues_identically(name: str) -> None:
    det = make_detector(name, seed=5)
    t, x = series()
    for ti, xi in zip(t[:300], x[:300]):
        det.update(ti, xi)
    copy = pickle.loads(pickle.dumps(det))
    a = [det.update(ti, xi) for ti, xi in zip(t[300:], x[300:])]
    b = [copy.update(ti, xi) for ti, xi in zip(t[300:], x[300:])]
    assert a == b


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_scores(name: str) -> None:
    t, x = series(900, seed=9)
    runs = []
    for _ in range(2):
        det = make_detector(name, seed=11)
        runs.append([det.update(ti, xi) for ti, xi in zip(t, x)])
    assert runs[0] == runs[1]


def test_the_learned_detector_depends_on_its_seed_only_through_its_reservoir() -> None:
    t, x = series(1500, seed=2)
    a, b = make_detector("knn", seed=1), make_detector("knn", seed=2)
    for ti, xi in zip(t, x):
        a.update(ti, xi)
        b.update(ti, xi)
    assert a.kept == b.kept == a.reservoir
    assert not np.array_equal(a.memory[a.recent :], b.memory[b.recent :])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=64) | st.integers(-1000, 1000),
        min_size=1,
        max_size=120,
    ),
    st.sampled_from(NAMES),
)
def test_any_input_gives_a_bounded_score(values: list[float], name: str) -> None:
    det = make_detector(name, seed=0, warmup=3)
    for i, v in enumerate(values):
        s = det.update(i * 60.0, float(v))
        assert 0.0 <= s <= 1.0


def test_unknown_detector_and_bad_parameters_are_input_errors() -> None:
    with pytest.raises(InputError, match="unknown detector"):
        make_detector("magic")
    with pytest.raises(InputError, match="alpha"):
        make_detector("ewma", alpha=0)


def test_score_is_monotone_and_does_not_saturate() -> None:
    zs = [0, 1, 4, 100, 1e6, 1e9]
    scores = [score_from_z(z) for z in zs]
    assert scores == sorted(scores) and len(set(scores)) == len(scores) and scores[-1] < 1


def test_population_scores_a_value_far_from_every_key() -> None:
    pop = Population(warmup=20)
    rng = np.random.default_rng(0)
    for v in rng.normal(100, 10, 200):
        pop.learn(float(v))
    assert pop.score(105) < 0.3 < 0.6 < pop.score(500)


def test_context_novelty_knows_a_repeated_pattern_and_flags_a_new_one() -> None:
    from huntlab.stream.context import ContextNovelty

    det = ContextNovelty(levels=4, order=3, warmup=5)
    pattern = [0.0, 10.0, 20.0, 30.0]
    for i in range(200):
        det.update(i * 60.0, pattern[i % 4])
    t = 200 * 60.0
    assert det.novelty(t, pattern[200 % 4]) == 0.0  # the cycle continues: every context known
    assert det.novelty(t, 20.0) > 0.0  # in range, but never after (20, 30)
    assert det.novelty(t, 31.0) >= 1.0 and det.novelty(t, 300.0) > det.novelty(t, 31.0)


def test_context_memory_is_bounded_by_its_generations() -> None:
    from huntlab.stream.context import ContextNovelty

    det = ContextNovelty(generation=100, warmup=5)
    rng = np.random.default_rng(0)
    for i, v in enumerate(rng.normal(0, 1, 2000)):
        det.update(i * 60.0, float(v))
        assert len(det.known) + len(det.older) <= 2 * 100 * det.order
    assert len(pickle.dumps(det)) < 200_000


def test_a_value_just_past_the_range_is_judged_on_its_edge() -> None:
    from huntlab.stream.context import ContextNovelty

    strict, tolerant = ContextNovelty(warmup=5), ContextNovelty(warmup=5, tolerance=0.02)
    for i in range(300):
        for det in (strict, tolerant):
            det.update(i * 60.0, float(i % 11))
    t = 300 * 60.0
    assert strict.novelty(t, 10.1) >= 1.0  # beyond the range: wholly novel
    assert tolerant.novelty(t, 10.1) == tolerant.novelty(t, 10.0) < 1.0
    assert tolerant.novelty(t, 10.5) >= 1.0  # 5% past it is beyond the tolerance


def test_resting_context_in_the_stream_processor_never_rests() -> None:
    t, x = series(900)
    x[[400, 403, 420, 700]] += [80.0, 120.0, 200.0, 60.0]  # alarms close together
    kw = {"warmup": 4, "short": 1, "holdoff": 1}  # as the stream processor builds detectors
    rest = make_detector("context-rest", **kw)
    plain = make_detector("context", tolerance=0.02, **kw)
    a = [rest.update(ti, xi) for ti, xi in zip(t, x)]
    b = [plain.update(ti, xi) for ti, xi in zip(t, x)]
    assert a == b and min(a[400], a[403]) >= 0.3  # two alarms three rows apart


def test_default_holdoff_is_the_detectors_own_unless_given() -> None:
    assert make_detector("context").holdoff == 75
    assert make_detector("seasonal").holdoff == 300
    assert make_detector("context", holdoff=1).holdoff == 1
    assert make_detector("ensemble", members=["context", "seasonal"]).members[0].name == "context"


def test_context_as_a_stream_job_configures_it_flags_an_hourly_outbreak() -> None:
    rng = np.random.default_rng(4)
    counts = [float(c) for c in rng.poisson(20, 24 * 21)]
    det = make_detector("context", seed=0, warmup=4, poisson=True, short=1, holdoff=1)
    before = [det.update(h * 3600.0, c) for h, c in enumerate(counts)]
    outbreak = det.score_one(len(counts) * 3600.0, 140.0)
    assert outbreak >= 0.5 and outbreak > max(before[24 * 7 :])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-50, 50), max_size=60), st.integers(1, 7))
def test_push_bounds_a_list_like_a_deque(values: list[int], maxlen: int) -> None:
    from collections import deque

    from huntlab.stream.detectors import push

    buf: list[int] = []
    ref: deque[int] = deque(maxlen=maxlen)
    for v in values:
        push(buf, v, maxlen)
        ref.append(v)
        assert buf == list(ref)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0, 1e12, allow_nan=False, allow_subnormal=False), min_size=1, max_size=12)
)
def test_ensemble_mean_is_numpys_bit_for_bit(values: list[float]) -> None:
    from huntlab.stream.detectors import _mean

    assert _mean(values) == float(np.mean(values))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.floats(-1e6, 1e6, allow_nan=False) | st.just(float("nan")), min_size=5, max_size=150
    ),
    st.integers(0, 150),
    st.sampled_from(NAMES),
)
def test_state_restored_at_any_point_scores_identically(
    values: list[float], cut: int, name: str
) -> None:
    """The checkpointed state (bounded lists, arrays) gives the same scores after a restore."""
    det = make_detector(name, seed=2, warmup=3, short=1, holdoff=1)
    for i, v in enumerate(values[:cut]):
        det.update(i * 60.0, v)
    copy = pickle.loads(pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL))
    rest = list(enumerate(values))[cut:]
    a = [(det.update(i * 60.0, v), det.expected_one(i * 60.0)) for i, v in rest]
    b = [(copy.update(i * 60.0, v), copy.expected_one(i * 60.0)) for i, v in rest]
    assert a == b
    assert _same_state(det, copy)


def _same_state(a: object, b: object) -> bool:
    """Equal detector state, compared by value (sets may pickle in another order)."""
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    if isinstance(a, np.random.Generator):
        return a.bit_generator.state == b.bit_generator.state
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    if hasattr(a, "__dict__"):
        return type(a) is type(b) and _same_state(vars(a), vars(b))
    return a == b


def test_buffers_stay_within_their_bounds() -> None:
    det = make_detector("ensemble", seed=1, short=3, holdoff=4)
    t, x = series(2500, seed=3)
    for ti, xi in zip(t, x):
        det.update(ti, xi)
    assert len(det.z_hist) == det.history and len(det.z_short) == 3 and len(det.s_recent) == 4
    seasonal, _, knn = det.members
    assert len(seasonal.recent) == seasonal.global_n
    assert all(len(b) == seasonal.per_bucket for b in seasonal.buckets.values())
    assert len(knn.window) == knn.lags and len(knn.dists) == knn.n_dists
