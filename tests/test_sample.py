"""The sample-data generator: schema, determinism, realism and the planted patterns."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from huntlab.errors import InputError
from huntlab.events import EVENT_SCHEMA, EVENT_TYPES, url_domains, validate_batch
from huntlab.sample import (
    OUTBREAK_COUNTRY,
    OUTBREAK_FAMILY,
    SPIKE_SIGNATURE,
    SPIKE_VERSION,
    clean_url,
    generate_events,
    load_urls,
    planted_patterns,
    sample_table,
    write_sample,
)

URL_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "urls"
N = 300_000


@pytest.fixture(scope="module")
def events() -> pa.Table:
    return sample_table(N)


@pytest.fixture(scope="module")
def con(events: pa.Table) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone='UTC'")
    c.register("events", events)
    return c


def one(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> object:
    return con.execute(sql, list(params)).fetchone()[0]


def test_batches_conform_to_the_schema():
    batches = list(generate_events(130_001, batch_size=50_000))
    assert [b.num_rows for b in batches] == [50_000, 50_000, 30_001]
    assert all(b.schema == EVENT_SCHEMA for b in batches)
    assert list(generate_events(0)) == []


def test_bad_arguments():
    with pytest.raises(InputError):
        list(generate_events(-1))
    with pytest.raises(InputError):
        list(generate_events(10, batch_size=0))
    with pytest.raises(InputError):
        write_sample(Path("x.xml"), 10, fmt="xml")


def test_deterministic_per_seed_and_independent_of_batch_size():
    a = sample_table(80_000, seed=3, batch_size=7_000)
    b = sample_table(80_000, seed=3, batch_size=1_000_000)
    assert a.equals(b)
    c = sample_table(80_000, seed=4)
    assert not a.column("event_id").equals(c.column("event_id"))


def test_generated_events_are_all_valid(events):
    valid, rejected = validate_batch(events)
    assert rejected.num_rows == 0, rejected.column("reason").value_counts()
    assert valid.num_rows == N


def test_ids_times_and_dates(events, con):
    assert pc.count_distinct(events.column("event_id")).as_py() == N
    assert (
        one(
            con,
            "select count(*) from events where not regexp_full_match(event_id, "
            "'[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}')",
        )
        == 0
    )
    assert one(con, "select count(*) from events where event_date <> cast(ts as date)") == 0
    assert one(
        con,
        "select min(event_date) = date '2026-10-01' and max(event_date) = "
        "date '2026-10-30' from events",
    )
    assert one(con, "select count(distinct schema_version) from events") == 1


def test_event_type_mix(con):
    mix = dict(
        con.execute(
            "select event_type, count(*) / sum(count(*)) over () from events group by 1"
        ).fetchall()
    )
    target = {
        "detection_hits": 0.35,
        "blocked_infection": 0.25,
        "blocked_url": 0.25,
        "beta_detection": 0.05,
        "crash": 0.10,
    }
    assert set(mix) == set(EVENT_TYPES)
    for t, share in target.items():
        assert abs(mix[t] - share) < 0.015, (t, mix[t])


def test_type_specific_columns(con):
    assert (
        one(
            con,
            "select count(*) from events where event_type = 'crash' and "
            "(hit_count is not null or family is not null or crash_signature is null)",
        )
        == 0
    )
    assert (
        one(
            con,
            "select count(*) from events where event_type <> 'crash' and "
            "(crash_signature is not null or hit_count < 1)",
        )
        == 0
    )
    assert (
        one(
            con,
            "select count(*) from events where event_type in "
            "('blocked_infection', 'beta_detection', 'blocked_url') and hit_count <> 1",
        )
        == 0
    )
    assert one(con, "select max(hit_count) > 50 from events where event_type = 'detection_hits'")
    assert (
        one(
            con,
            "select count(*) from events where event_type = 'blocked_url' and "
            "(family is not null or file_hash is not null or url is null)",
        )
        == 0
    )
    assert (
        one(
            con, "select count(*) from events where event_type <> 'blocked_url' and url is not null"
        )
        == 0
    )


def test_clients_have_fixed_attributes(con):
    clients = one(con, "select count(distinct client_id) from events")
    assert 15_000 <= clients <= 20_000  # 20k clients for small n, heavy-tailed activity
    assert (
        one(
            con,
            "select max(k) from (select count(distinct (country, os, product, "
            "product_version)) k from events group by client_id)",
        )
        == 1
    )
    assert (
        one(
            con,
            "select count(*) from events where not regexp_full_match(client_id, '[0-9a-f]{32}')",
        )
        == 0
    )


def test_countries_and_families_are_skewed(con):
    countries = con.execute(
        "select country, count(*) from events group by 1 order by 2 desc"
    ).fetchall()
    assert len(countries) >= 55
    assert countries[0][0] == "US"
    assert {"DE", "BR", "IN", "RU"} <= {c for c, _ in countries[:6]}
    fams = [
        c
        for _, c in con.execute(
            "select family, count(*) from events where family is not "
            "null group by 1 order by 2 desc"
        ).fetchall()
    ]
    assert 38 <= len(fams) <= 45
    assert fams[0] > 5 * fams[len(fams) // 2]
    per_family = con.execute(
        "select family, count(distinct detection_name), count(distinct "
        "file_hash) from events where family is not null group by 1"
    ).fetchall()
    assert all(names >= 2 for _, names, _ in per_family)
    # a hash belongs to one family and has one production detection name
    assert (
        one(
            con,
            "select max(k) from (select count(distinct family) k from events "
            "where file_hash is not null group by file_hash)",
        )
        == 1
    )
    assert (
        one(
            con,
            "select max(k) from (select count(distinct detection_name) k from events "
            "where event_type <> 'beta_detection' and file_hash is not null "
            "group by file_hash)",
        )
        == 1
    )


def test_diurnal_and_weekly_patterns(con):
    hours = [
        c
        for _, c in con.execute(
            "select hour(ts), count(*) from events group by 1 order by 1"
        ).fetchall()
    ]
    assert len(hours) == 24 and max(hours) > 1.6 * min(hours)
    weekend = one(
        con,
        "select count(*) / count(distinct event_date) from events "
        "where dayofweek(event_date) in (0, 6)",
    )
    weekday = one(
        con,
        "select count(*) / count(distinct event_date) from events "
        "where dayofweek(event_date) between 1 and 5",
    )
    assert weekend < 0.9 * weekday


def test_planted_patterns_description():
    p = planted_patterns()
    assert (
        (p.outbreak_family, p.outbreak_country)
        == (OUTBREAK_FAMILY, OUTBREAK_COUNTRY)
        == ("Qakbot", "BR")
    )
    assert p.outbreak_start == date(2026, 10, 21)
    assert p.outbreak_peak == (date(2026, 10, 26), date(2026, 10, 30))
    assert (p.spike_version, p.spike_release) == (SPIKE_VERSION, date(2026, 10, 23))
    assert p.last_day == date(2026, 10, 30)
    q = planted_patterns(start=datetime(2027, 1, 1, tzinfo=UTC), days=60)
    assert q.outbreak_start == date(2027, 1, 1) + timedelta(days=40)


def test_outbreak_qakbot_in_brazil(con):
    """Qakbot is rare in BR before the outbreak and dominates its last five days."""
    before, last5 = con.execute("""
        select count(*) filter (where event_date < date '2026-10-21') / 20.0,
               count(*) filter (where event_date >= date '2026-10-26') / 5.0
        from events where family = 'Qakbot' and country = 'BR'""").fetchone()
    assert last5 > 20 * max(before, 1)
    top = one(
        con,
        "select family from events where country = 'BR' and event_date >= "
        "date '2026-10-26' and family is not null group by 1 order by count(*) desc "
        "limit 1",
    )
    assert top == "Qakbot"
    # elsewhere Qakbot is flat
    other_before, other_last5 = con.execute("""
        select count(*) filter (where event_date < date '2026-10-26') / 25.0,
               count(*) filter (where event_date >= date '2026-10-26') / 5.0
        from events where family = 'Qakbot' and country <> 'BR'""").fetchone()
    assert other_last5 < 1.5 * other_before


def test_outbreak_is_the_family_rising_fastest(con):
    rising = con.execute("""
        select family,
               (count(*) filter (where event_date >= date '2026-10-26') / 5.0)
             / (count(*) filter (where event_date < date '2026-10-26') / 25.0) as ratio
        from events where family is not null group by 1 order by ratio desc limit 2""").fetchall()
    assert rising[0][0] == "Qakbot"
    assert rising[0][1] > 2.5 and rising[1][1] < 1.5


def test_crash_spike_on_new_version(con):
    first_seen = one(
        con, "select min(event_date) from events where product_version = ?", SPIKE_VERSION
    )
    assert first_seen == date(2026, 10, 23)
    rates = dict(
        con.execute("""
        select product_version = '24.4.0',
               count(*) filter (where event_type = 'crash')
             / count(distinct (client_id, event_date))
        from events group by 1""").fetchall()
    )
    assert 5 <= rates[True] / rates[False] <= 10
    since = dict(
        con.execute("""
        select product_version = '24.4.0',
               count(*) filter (where event_type = 'crash') / count(distinct client_id)
        from events where event_date >= date '2026-10-23' group by 1""").fetchall()
    )
    assert 4.5 <= since[True] / since[False] <= 10
    top_sig = one(
        con,
        "select crash_signature from events where event_type = 'crash' and "
        "product_version = ? group by 1 order by count(*) desc limit 1",
        SPIKE_VERSION,
    )
    assert top_sig == SPIKE_SIGNATURE
    assert (
        one(
            con,
            "select count(*) from events where crash_signature = ? and product_version <> ?",
            SPIKE_SIGNATURE,
            SPIKE_VERSION,
        )
        == 0
    )
    assert one(
        con, "select bool_and(os like 'win%') from events where product_version = ?", SPIKE_VERSION
    )


def test_synthetic_urls_and_domains(con):
    assert one(con, "select count(distinct url) > 1000 from events")
    assert (
        one(
            con,
            "select count(*) from events where url is not null and (domain like 'www.%' "
            "or domain like '%:%' or domain <> lower(domain))",
        )
        == 0
    )
    assert (
        one(
            con,
            "select count(distinct detection_name) from events where event_type = 'blocked_url'",
        )
        == 3
    )


def test_clean_url():
    assert clean_url('"http://a.example/x"') == "http://a.example/x"
    assert clean_url("'http://a.example/p=''$ab'''") == "http://a.example/p='$ab'"
    assert clean_url("x.example/?a=1&amp;amp;amp;b=2") == "http://x.example/?a=1&b=2"
    assert clean_url("  ") is None


@pytest.fixture(scope="module")
def url_dir() -> Path:
    if not URL_DIR.is_dir():
        pytest.skip("../shared/data/urls is not present beside the repository")
    return URL_DIR


def test_real_urls_are_cleaned(url_dir):
    urls = load_urls(url_dir)
    assert len(urls) > 20_000
    assert {c for _, c in urls} == {"phishing", "malware", "spam"}
    assert not any("&amp;" in u or u[0] in "\"'" or u[-1] == '"' for u, _ in urls)
    assert all("://" in u for u, _ in urls)


def test_blocked_urls_come_from_the_real_lists(url_dir):
    t = sample_table(60_000, url_dir=url_dir)
    known = {u for u, _ in load_urls(url_dir)}
    blocked = t.filter(pc.equal(t.column("event_type"), "blocked_url"))
    assert set(blocked.column("url").to_pylist()) <= known
    assert blocked.column("domain").equals(url_domains(blocked.column("url")))
    assert pc.all(pc.invert(pc.starts_with(blocked.column("domain"), "www."))).as_py()
    assert validate_batch(t)[1].num_rows == 0


def test_missing_url_dir_falls_back_to_synthetic(tmp_path):
    a = sample_table(5_000, url_dir=tmp_path / "nowhere")
    b = sample_table(5_000)
    assert a.equals(b)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_write_sample_round_trips_through_duckdb(tmp_path, fmt):
    path = tmp_path / f"events.{fmt}"
    assert write_sample(path, 20_000, fmt=fmt, seed=11) == 20_000
    c = duckdb.connect()
    c.execute("SET TimeZone='UTC'")
    reader = {
        "parquet": c.read_parquet,
        "csv": lambda p: c.read_csv(p, header=True),
        "jsonl": lambda p: c.read_json(p, format="newline_delimited"),
    }[fmt]
    rel = reader(str(path))
    assert rel.columns == EVENT_SCHEMA.names
    expected = sample_table(20_000, seed=11)
    got = rel.aggregate(
        "count(*), count(distinct event_id), min(event_date)::varchar, "
        "sum(hit_count), count(url), epoch_us(max(ts))"
    ).fetchone()
    assert got == (
        20_000,
        20_000,
        "2026-10-01",
        pc.sum(expected.column("hit_count")).as_py(),
        20_000 - expected.column("url").null_count,
        pc.max(expected.column("ts")).value,
    )
