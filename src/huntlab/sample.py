"""Realistic synthetic antivirus telemetry with planted patterns to hunt, vectorized with numpy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from huntlab.errors import InputError
from huntlab.events import EVENT_SCHEMA, EVENT_TYPES, SCHEMA_VERSION, url_domains

# ---- planted patterns (see planted_patterns) --------------------------------------------------

OUTBREAK_FAMILY = "Qakbot"
OUTBREAK_COUNTRY = "BR"
OUTBREAK_DETECTIONS: tuple[str, ...] = ("Win32:Qakbot-OB [Trj]", "Win32:Qakbot-OD [Trj]")
SPIKE_VERSION = "24.4.0"
SPIKE_SIGNATURE = "avsvc.exe!ScanEngine::Open+0x1f3"
SPIKE_CRASH_MULTIPLIER = 7.0
SPIKE_CLIENT_SHARE = 0.25  # of Windows clients
SPIKE_ROLLOUT = (0.45, 0.35, 0.20)  # cohorts starting on release day +0, +1, +2

BLOCK_ROWS = 65_536  # rows per internal RNG block: output does not depend on batch_size
_DAY_US = 86_400_000_000

# ---- reference data ---------------------------------------------------------------------------

# (ISO code, relative share of the client base, UTC offset in hours)
COUNTRIES: tuple[tuple[str, float, float], ...] = (
    ("US", 14.0, -5),
    ("DE", 7.0, 1),
    ("BR", 6.5, -3),
    ("IN", 6.0, 5.5),
    ("RU", 5.5, 3),
    ("FR", 4.5, 1),
    ("GB", 4.0, 0),
    ("IT", 3.5, 1),
    ("ES", 3.0, 1),
    ("PL", 3.0, 1),
    ("MX", 2.8, -6),
    ("JP", 2.5, 9),
    ("CZ", 2.2, 1),
    ("TR", 2.2, 3),
    ("ID", 2.0, 7),
    ("CA", 1.8, -5),
    ("UA", 1.8, 2),
    ("NL", 1.6, 1),
    ("VN", 1.6, 7),
    ("AR", 1.4, -3),
    ("KR", 1.3, 9),
    ("AU", 1.3, 10),
    ("PH", 1.2, 8),
    ("TH", 1.1, 7),
    ("CO", 1.1, -5),
    ("EG", 1.0, 2),
    ("IR", 1.0, 3.5),
    ("PK", 1.0, 5),
    ("MY", 0.9, 8),
    ("SK", 0.9, 1),
    ("RO", 0.9, 2),
    ("HU", 0.8, 1),
    ("BE", 0.8, 1),
    ("AT", 0.8, 1),
    ("CH", 0.7, 1),
    ("SE", 0.7, 1),
    ("PT", 0.7, 0),
    ("GR", 0.6, 2),
    ("CL", 0.6, -4),
    ("PE", 0.6, -5),
    ("ZA", 0.6, 2),
    ("SA", 0.6, 3),
    ("NG", 0.5, 1),
    ("DZ", 0.5, 1),
    ("MA", 0.5, 1),
    ("BD", 0.5, 6),
    ("KZ", 0.4, 5),
    ("BY", 0.4, 3),
    ("IL", 0.4, 2),
    ("AE", 0.4, 4),
    ("TW", 0.4, 8),
    ("CN", 0.4, 8),
    ("DK", 0.3, 1),
    ("NO", 0.3, 1),
    ("FI", 0.3, 2),
    ("IE", 0.3, 0),
    ("NZ", 0.3, 12),
    ("SG", 0.3, 8),
    ("HR", 0.3, 1),
    ("BG", 0.3, 2),
    ("RS", 0.3, 1),
    ("VE", 0.3, -4),
)
LATAM_BANKER_COUNTRIES = frozenset({"BR", "MX", "AR", "CO", "CL", "PE", "VE", "ES", "PT"})
LATAM_BANKER_SHARE = 0.12

# (os, share, group) with group 0 = Windows, 1 = macOS, 2 = Android
OSES: tuple[tuple[str, float, int], ...] = (
    ("win10", 0.46, 0),
    ("win11", 0.36, 0),
    ("win7", 0.02, 0),
    ("macos13", 0.015, 1),
    ("macos14", 0.025, 1),
    ("macos15", 0.02, 1),
    ("android12", 0.025, 2),
    ("android13", 0.035, 2),
    ("android14", 0.04, 2),
)
PRODUCTS: tuple[tuple[str, float], ...] = (
    ("free_av", 0.55),
    ("internet_security", 0.25),
    ("total_protection", 0.12),
    ("premium_security", 0.08),
)
BASE_VERSIONS: tuple[tuple[str, float], ...] = (
    ("24.1.2", 0.08),
    ("24.2.0", 0.12),
    ("24.2.3", 0.25),
    ("24.3.0", 0.20),
    ("24.3.1", 0.35),
)

# Families per OS group, most prevalent first (Zipf-like weights by rank): (name, prefixes, tag)
WIN_FAMILIES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Emotet", ("Win32", "Win64", "VBS"), "Trj"),
    ("AgentTesla", ("Win32",), "Trj"),
    ("Formbook", ("Win32",), "Trj"),
    ("RedLine", ("Win32", "Win64"), "Stealer"),
    ("LokiBot", ("Win32",), "Trj"),
    ("Remcos", ("Win32",), "RAT"),
    ("AsyncRAT", ("Win32",), "RAT"),
    ("SmokeLoader", ("Win32",), "Trj"),
    ("Glupteba", ("Win32", "Win64"), "Trj"),
    ("njRAT", ("Win32",), "RAT"),
    ("GuLoader", ("Win32", "VBS"), "Trj"),
    ("Vidar", ("Win32",), "Stealer"),
    ("LummaStealer", ("Win64",), "Stealer"),
    ("Amadey", ("Win32",), "Trj"),
    ("Phorpiex", ("Win32",), "Wrm"),
    ("SocGholish", ("JS",), "Trj"),
    ("IcedID", ("Win64",), "Trj"),
    ("Ramnit", ("Win32",), "Inf"),
    ("Sality", ("Win32",), "Inf"),
    ("Dridex", ("Win32",), "Trj"),
    ("Ursnif", ("Win32",), "Trj"),
    ("TrickBot", ("Win32",), "Trj"),
    ("Raccoon", ("Win32",), "Stealer"),
    ("StopDjvu", ("Win32",), "Ransom"),
    ("LockBit", ("Win32", "Win64"), "Ransom"),
    ("WannaCry", ("Win32",), "Ransom"),
    ("CobaltStrike", ("Win64",), "Tool"),
    ("CoinMiner", ("Win64",), "Miner"),
    ("Qakbot", ("Win32",), "Trj"),
    ("Grandoreiro", ("Win32",), "Bank"),
    ("Mekotio", ("Win32",), "Bank"),
    ("Guildma", ("Win32",), "Bank"),
)
MAC_FAMILIES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Adload", ("MacOS",), "Adw"),
    ("Shlayer", ("MacOS",), "Trj"),
    ("AtomicStealer", ("MacOS",), "Stealer"),
    ("Pirrit", ("MacOS",), "Adw"),
)
ANDROID_FAMILIES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Joker", ("Android",), "Trj"),
    ("Hydra", ("Android",), "Bank"),
    ("Triada", ("Android",), "Trj"),
    ("FluBot", ("Android",), "Bank"),
    ("SpyNote", ("Android",), "RAT"),
    ("Anubis", ("Android",), "Bank"),
)
LATAM_BANKERS: tuple[tuple[str, float], ...] = (
    ("Grandoreiro", 0.5),
    ("Mekotio", 0.3),
    ("Guildma", 0.2),
)

WIN_CRASHES: tuple[str, ...] = (
    "avsvc.exe!UpdateManager::ApplyDelta+0x88",
    "avui.exe!Ui::RenderFrame+0x2c",
    "avshield.sys!FltPreCreate+0x41",
    "avsvc.exe!Quarantine::Move+0x112",
    "avsvc.exe!Unpacker::Inflate+0x3a7",
    "avwebshield.dll!HttpParser::Feed+0x9e",
    "avsvc.exe!Sandbox::Spawn+0x64",
    "avui.exe!Tray::OnTimer+0x15",
    "avshield.sys!ProcessNotify+0x2b0",
    "avsvc.exe!Telemetry::Flush+0x51",
    "avemail.dll!MimeReader::Next+0x7c",
    "avsvc.exe!Scheduler::Tick+0x30",
)
MAC_CRASHES: tuple[str, ...] = (
    "com.av.daemon!ScanQueue.pop+0x44",
    "com.av.ui!MenuBar.refresh+0x1c",
    "com.av.netext!FlowFilter.handle+0xd0",
    "com.av.daemon!Updater.apply+0x90",
)
ANDROID_CRASHES: tuple[str, ...] = (
    "libavengine.so!scan_apk+0x2f4",
    "com.av.mobile!WebShieldService.onUrl+0x38",
    "libavengine.so!unzip_entry+0x11c",
    "com.av.mobile!MainActivity.onResume+0x12",
)

URL_DETECTIONS = {"phishing": "URL:Phishing", "malware": "URL:Mal", "spam": "URL:Spam"}

# Event type mix (order of EVENT_TYPES); crash share is split between spike and other versions.
TYPE_MIX = {
    "blocked_infection": 0.25,
    "beta_detection": 0.05,
    "detection_hits": 0.35,
    "crash": 0.10,
    "blocked_url": 0.25,
}

HOUR_WEIGHTS = np.array(
    [
        0.25,
        0.15,
        0.10,
        0.08,
        0.08,
        0.12,
        0.30,
        0.55,
        0.80,
        0.95,
        1.00,
        1.00,
        0.95,
        0.95,
        1.00,
        1.00,
        0.95,
        0.95,
        1.00,
        1.05,
        1.05,
        0.95,
        0.70,
        0.45,
    ]
)
WEEKDAY_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 0.97, 0.82, 0.78])  # Monday first

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


@dataclass(frozen=True)
class PlantedPatterns:
    """Where and when generate_events plants the patterns hunting jobs should find."""

    outbreak_family: str
    outbreak_country: str
    outbreak_start: date  # first day the family rises in the country (rare everywhere before)
    outbreak_peak: tuple[date, date]  # last 5 days, inclusive: the family is top-1 there
    outbreak_detections: tuple[str, ...]  # detection names only the outbreak uses
    spike_version: str
    spike_release: date  # first day the version is seen (staggered over 3 days, Windows only)
    spike_signature: str  # dominant crash signature of the spike version, new with it
    spike_crash_multiplier: float  # crash events per event (= per active client-day) vs others
    first_day: date
    last_day: date  # inclusive


def _start_us(start: datetime | date) -> int:
    """Window start as microseconds since the epoch (naive datetimes are UTC)."""
    if isinstance(start, datetime):
        dt = start if start.tzinfo else start.replace(tzinfo=UTC)
    else:
        dt = datetime.combine(start, time(0), tzinfo=UTC)
    return int((dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))


def _day_indices(days: int) -> tuple[int, int]:
    """Day index (from 0) of the outbreak start and of the spike release."""
    return int(days * 2 / 3), int(days * 11 / 15)


def planted_patterns(
    *, start: datetime | date = date(2026, 10, 1), days: int = 30
) -> PlantedPatterns:
    """The planted outbreak and crash spike for a generation window (independent of n and seed)."""
    first = datetime.fromtimestamp(_start_us(start) / 1e6, tz=UTC).date()
    ob, rel = _day_indices(days)
    last = first + timedelta(days=days - 1)
    return PlantedPatterns(
        outbreak_family=OUTBREAK_FAMILY,
        outbreak_country=OUTBREAK_COUNTRY,
        outbreak_start=first + timedelta(days=ob),
        outbreak_peak=(max(first, last - timedelta(days=4)), last),
        outbreak_detections=OUTBREAK_DETECTIONS,
        spike_version=SPIKE_VERSION,
        spike_release=first + timedelta(days=rel),
        spike_signature=SPIKE_SIGNATURE,
        spike_crash_multiplier=SPIKE_CRASH_MULTIPLIER,
        first_day=first,
        last_day=last,
    )


# ---- helpers ----------------------------------------------------------------------------------


def _hex(raw: np.ndarray) -> pa.StringArray:
    """Lowercase hex strings from an (n, k) uint8 matrix, built straight into Arrow buffers."""
    n, k = raw.shape
    out = np.empty((n, 2 * k), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 0x0F]
    offsets = np.arange(0, (n + 1) * 2 * k, 2 * k, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))


def _random_bytes(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """An (n, k) writable uint8 matrix of random bytes."""
    return np.frombuffer(rng.bytes(n * k), dtype=np.uint8).reshape(n, k).copy()


def _cdf(weights: np.ndarray | list[float]) -> np.ndarray:
    """Normalized cumulative distribution for searchsorted sampling."""
    c = np.cumsum(np.asarray(weights, dtype=np.float64))
    return c / c[-1]


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn from a cdf with uniforms u."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def _zipf(k: int, s: float) -> np.ndarray:
    """Zipf weights 1/rank^s for k ranks."""
    return 1.0 / np.arange(1, k + 1, dtype=np.float64) ** s


def clean_url(line: str) -> str | None:
    """Clean one line of a URL list: quotes, HTML '&amp;', blanks, missing scheme."""
    s = line.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        quote, s = s[0], s[1:-1]
        s = s.replace(quote * 2, quote)
    elif s and s[0] in "\"'":
        s = s.strip(s[0])
    while "&amp;" in s:
        s = s.replace("&amp;", "&")
    s = s.replace(" ", "%20")
    if not s:
        return None
    if not _SCHEME.match(s):
        s = "http://" + s
    return s


def load_urls(url_dir: Path) -> list[tuple[str, str]]:
    """Deduplicated (url, category) pairs from iscx-url-2016/{phishing,malware,spam}.txt."""
    base = Path(url_dir)
    if not (base / "phishing.txt").exists():
        base = base / "iscx-url-2016"
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for cat in ("phishing", "malware", "spam"):
        f = base / f"{cat}.txt"
        if not f.is_file():
            continue
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            url = clean_url(line)
            if url and url not in seen:
                seen.add(url)
                out.append((url, cat))
    return out


def synthetic_urls(rng: np.random.Generator, k: int = 4000) -> list[tuple[str, str]]:
    """A deterministic list of malicious-looking (url, category) pairs."""
    syl = [
        "ka",
        "ro",
        "mi",
        "zu",
        "lex",
        "tor",
        "van",
        "pay",
        "sec",
        "log",
        "net",
        "cdn",
        "up",
        "dat",
        "fin",
        "box",
        "mail",
        "drop",
        "nova",
        "ix",
        "qu",
        "bit",
        "host",
        "web",
    ]
    tlds = ["com", "net", "org", "ru", "xyz", "top", "info", "br", "cn", "tk", "online", "site"]
    brands = ["paypal", "apple", "microsoft", "netflix", "bankofamerica", "itau", "dhl", "amazon"]
    paths = {
        "phishing": [
            "/login.php",
            "/signin/verify",
            "/account/update.html",
            "/secure/index.php",
            "/webscr?cmd=_login-run",
            "/wp-includes/auth/",
        ],
        "malware": [
            "/invoice.zip",
            "/bot.exe",
            "/gate.php",
            "/config.bin",
            "/doc/Scan_0421.js",
            "/wp-content/uploads/update.exe",
        ],
        "spam": ["/offer/", "/pills/cheap.html", "/casino/bonus", "/r.php?id=", "/promo/win"],
    }
    cats = ["phishing", "malware", "spam"]
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(out) < k:
        cat = cats[int(rng.choice(3, p=[0.45, 0.2, 0.35]))]
        r = rng.random()
        name = "".join(syl[i] for i in rng.integers(0, len(syl), int(rng.integers(2, 4))))
        host = f"{name}.{tlds[int(rng.integers(len(tlds)))]}"
        if cat == "phishing" and r < 0.4:
            brand = brands[int(rng.integers(len(brands)))]
            host = f"{brand}.com-{name}.{tlds[int(rng.integers(len(tlds)))]}"
        if r > 0.9:
            host = (
                ".".join(str(int(x)) for x in rng.integers(1, 255, 4))
                + f":{int(rng.integers(1024, 9000))}"
            )
        elif r > 0.6:
            host = "www." + host
        path = paths[cat][int(rng.integers(len(paths[cat])))]
        if path.endswith("="):
            path += str(int(rng.integers(1000, 99999)))
        url = f"{'https' if rng.random() < 0.4 else 'http'}://{host}{path}"
        if url not in seen:
            seen.add(url)
            out.append((url, cat))
    return out


def _detection_names(
    rng: np.random.Generator,
    family: str,
    prefixes: tuple[str, ...],
    tag: str,
    k: int,
    taken: set[str],
) -> list[str]:
    """k distinct detection names such as 'Win32:Emotet-AB [Trj]'."""
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    names: list[str] = []
    while len(names) < k:
        width = 1 if rng.random() < 0.3 else 2
        suffix = "".join(letters[i] for i in rng.integers(0, len(letters), width))
        name = f"{prefixes[len(names) % len(prefixes)]}:{family}-{suffix} [{tag}]"
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


# ---- the model: pools and per-client attributes, built once per call ---------------------------


class _Model:
    """Pools, clients and distributions shared by every block of one generate_events call."""

    def __init__(self, n: int, seed: int, start: datetime | date, days: int, url_dir: Path | None):
        """Build every pool and per-client attribute from the seed."""
        rng = np.random.default_rng([seed, 0x5EED])
        self.days = days
        self.start_us = _start_us(start)
        self.phase_s = (self.start_us // 1_000_000) % 86_400
        self.ob_day, self.release_day = _day_indices(days)

        # countries, oses, products, versions
        self.country_pool = pa.array([c for c, _, _ in COUNTRIES], pa.string())
        country_w = np.array([w for _, w, _ in COUNTRIES])
        offsets = np.array([int(o * 3600) for _, _, o in COUNTRIES], dtype=np.int64)
        self.os_pool = pa.array([o for o, _, _ in OSES], pa.string())
        os_group = np.array([g for _, _, g in OSES], dtype=np.int8)
        self.product_pool = pa.array([p for p, _ in PRODUCTS], pa.string())
        self.version_pool = pa.array([v for v, _ in BASE_VERSIONS] + [SPIKE_VERSION], pa.string())
        self.spike_idx = len(BASE_VERSIONS)
        br = [c for c, _, _ in COUNTRIES].index(OUTBREAK_COUNTRY)
        latam = np.array([c in LATAM_BANKER_COUNTRIES for c, _, _ in COUNTRIES])

        # clients: each with a fixed country, os, product and version
        nc = int(np.clip(n // 25, 20_000, 200_000))
        self.client_pool = _hex(_random_bytes(rng, nc, 16))
        self.c_country = _draw(_cdf(country_w), rng.random(nc)).astype(np.int16)
        self.c_os = _draw(_cdf([w for _, w, _ in OSES]), rng.random(nc)).astype(np.int16)
        self.c_group = os_group[self.c_os]
        self.c_product = _draw(_cdf([w for _, w in PRODUCTS]), rng.random(nc)).astype(np.int16)
        self.c_version = _draw(_cdf([w for _, w in BASE_VERSIONS]), rng.random(nc)).astype(np.int16)
        spike = (self.c_group == 0) & (rng.random(nc) < SPIKE_CLIENT_SHARE)
        self.c_version[spike] = self.spike_idx
        cohort = _draw(_cdf(SPIKE_ROLLOUT), rng.random(nc))
        self.c_offset = offsets[self.c_country]
        self.c_latam = latam[self.c_country]
        self.c_br = self.c_country == br
        activity = rng.lognormal(0.0, 1.0, nc)

        # which clients are active per day bucket (spike clients appear with their rollout cohort)
        n_buckets = len(SPIKE_ROLLOUT) + 1
        self.cum: list[np.ndarray] = []
        active_w, spike_w = [], []
        for b in range(n_buckets):
            active = ~spike | (cohort < b)
            w = np.where(active, activity, 0.0)
            self.cum.append(np.cumsum(w))
            active_w.append(w.sum())
            spike_w.append(w[spike].sum())
        d = np.arange(days)
        self.day_bucket = np.clip(d - self.release_day + 1, 0, n_buckets - 1).astype(np.int8)
        first_day = datetime.fromtimestamp(self.start_us / 1e6, tz=UTC).date()
        weekday = (first_day.weekday() + d) % 7
        day_w = WEEKDAY_WEIGHTS[weekday]  # flat volume with a weekly pattern
        self.day_cdf = _cdf(day_w)
        self.hour_cdf = _cdf(HOUR_WEIGHTS)

        # event-type mix: crash share of the spike version is SPIKE_CRASH_MULTIPLIER x the others
        spike_frac = (np.array(spike_w) / np.array(active_w))[self.day_bucket]
        s = float(np.sum(day_w * spike_frac) / day_w.sum())
        p_crash = TYPE_MIX["crash"] / (1 - s + SPIKE_CRASH_MULTIPLIER * s)
        base = np.array([TYPE_MIX[t] for t in EVENT_TYPES])
        crash_i = EVENT_TYPES.index("crash")
        other = base.copy()
        other[crash_i] = 0.0
        other /= other.sum()
        p_base = other * (1 - p_crash)
        p_base[crash_i] = p_crash
        p_spike = other * (1 - SPIKE_CRASH_MULTIPLIER * p_crash)
        p_spike[crash_i] = SPIKE_CRASH_MULTIPLIER * p_crash
        self.type_cdf_base, self.type_cdf_spike = _cdf(p_base), _cdf(p_spike)
        self.type_pool = pa.array(EVENT_TYPES, pa.string())

        # outbreak probability per day: rare before ob_day, then a sharp exponential rise
        steps = d - self.ob_day
        self.ob_p = np.where(steps >= 0, np.minimum(0.45, 0.02 * 1.55 ** np.maximum(steps, 0)), 0.0)

        # families, detection names and hash pools
        fams = list(WIN_FAMILIES) + list(MAC_FAMILIES) + list(ANDROID_FAMILIES)
        fam_names = [f for f, _, _ in fams]
        self.family_pool = pa.array(fam_names, pa.string())
        self.qakbot = fam_names.index(OUTBREAK_FAMILY)
        groups = [
            range(len(WIN_FAMILIES)),
            range(len(WIN_FAMILIES), len(WIN_FAMILIES) + len(MAC_FAMILIES)),
            range(len(WIN_FAMILIES) + len(MAC_FAMILIES), len(fams)),
        ]
        self.group_fams = [np.array(list(g), dtype=np.int16) for g in groups]
        self.group_cdf = []
        share = np.zeros(len(fams))
        for g in groups:
            w = _zipf(len(g), 1.1 if g.start == 0 else 0.8)
            if g.start == 0:  # the LATAM bankers only matter through their regional boost
                for fam, _ in LATAM_BANKERS:
                    w[fam_names.index(fam)] *= 0.2
            self.group_cdf.append(_cdf(w))
            share[list(g)] = w / w.sum()
        self.bankers = np.array([fam_names.index(f) for f, _ in LATAM_BANKERS], dtype=np.int16)
        self.banker_cdf = _cdf([w for _, w in LATAM_BANKERS])

        names: list[str] = []
        taken: set[str] = set(OUTBREAK_DETECTIONS)
        nf = len(fams)
        self.name_off = np.zeros(nf, np.int32)
        self.name_n = np.zeros(nf, np.int32)
        self.beta_off = np.zeros(nf, np.int32)
        self.beta_n = np.zeros(nf, np.int32)
        self.hash_off = np.zeros(nf, np.int64)
        self.hash_n = np.zeros(nf, np.int64)
        total_hashes = 0
        for i, (fam, prefixes, tag) in enumerate(fams):
            k = int(rng.integers(2, 6))
            self.name_off[i], self.name_n[i] = len(names), k
            names += _detection_names(rng, fam, prefixes, tag, k, taken)
            kb = int(rng.integers(1, 3))
            self.beta_off[i], self.beta_n[i] = len(names), kb
            names += _detection_names(rng, fam, prefixes, tag, kb, taken)
            self.hash_off[i] = total_hashes
            self.hash_n[i] = 8 + int(2500 * share[i] ** 0.8)
            total_hashes += int(self.hash_n[i])
        self.ob_name_off, self.ob_name_n = len(names), len(OUTBREAK_DETECTIONS)
        names += list(OUTBREAK_DETECTIONS)
        self.ob_hash_off, self.ob_hash_n = total_hashes, 24
        total_hashes += self.ob_hash_n
        self.hash_pool = _hex(_random_bytes(rng, total_hashes, 32))

        # blocked URLs: real lists when available, else synthetic
        urls = load_urls(url_dir) if url_dir is not None else []
        if not urls:
            urls = synthetic_urls(rng)
        perm = rng.permutation(len(urls))
        url_arr = pa.array([urls[i][0] for i in perm], pa.string())
        url_cat = np.array([list(URL_DETECTIONS).index(urls[i][1]) for i in perm], dtype=np.int32)
        doms = url_domains(url_arr)
        keep = pc.is_valid(doms)
        self.url_pool = url_arr.filter(keep)
        self.domain_pool = doms.filter(keep)
        self.url_cat = url_cat[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
        self.url_name_off = len(names)
        names += list(URL_DETECTIONS.values())
        self.name_pool = pa.array(names, pa.string())

        # crash signatures per OS group (Zipf), plus the spike signature
        sigs = list(WIN_CRASHES) + list(MAC_CRASHES) + list(ANDROID_CRASHES) + [SPIKE_SIGNATURE]
        self.sig_pool = pa.array(sigs, pa.string())
        offs = np.cumsum([0, len(WIN_CRASHES), len(MAC_CRASHES)])
        self.sig_off = offs.astype(np.int32)
        self.sig_cdf = [
            _cdf(_zipf(len(x), 1.3)) for x in (WIN_CRASHES, MAC_CRASHES, ANDROID_CRASHES)
        ]
        self.spike_sig = len(sigs) - 1

    def block(self, seed: int, index: int, m: int) -> pa.RecordBatch:
        """Generate block `index` (m rows) with its own RNG stream."""
        rng = np.random.default_rng([seed, 0xB10C, index])

        # time: day (weekly pattern, active clients), local hour (diurnal), then UTC
        day = _draw(self.day_cdf, rng.random(m))
        bucket = self.day_bucket[day]
        client = np.empty(m, dtype=np.int64)
        u = rng.random(m)
        for b, cum in enumerate(self.cum):
            sel = bucket == b
            if sel.any():
                client[sel] = np.minimum(
                    np.searchsorted(cum, u[sel] * cum[-1], side="right"), len(cum) - 1
                )
        local_s = _draw(self.hour_cdf, rng.random(m)) * 3600 + rng.integers(0, 3600, m)
        utc_s = (local_s - self.c_offset[client]) % 86_400
        in_slot_s = (utc_s - self.phase_s) % 86_400
        ts = (
            self.start_us
            + day.astype(np.int64) * _DAY_US
            + in_slot_s * 1_000_000
            + rng.integers(0, 1_000_000, m)
        )
        event_date = np.floor_divide(ts, _DAY_US).astype(np.int32)

        # event type depends on the version (crash spike)
        version = self.c_version[client]
        spike = version == self.spike_idx
        u = rng.random(m)
        etype = np.where(spike, _draw(self.type_cdf_spike, u), _draw(self.type_cdf_base, u))
        is_det = etype <= 2
        is_crash = etype == 3
        is_url = etype == 4

        # family: per OS group, LATAM bankers, planted outbreak
        group = self.c_group[client]
        fam = np.empty(m, dtype=np.int64)
        u = rng.random(m)
        for g, (fams, cdf) in enumerate(zip(self.group_fams, self.group_cdf)):
            sel = group == g
            fam[sel] = fams[_draw(cdf, u[sel])]
        win = group == 0
        banker = win & self.c_latam[client] & (rng.random(m) < LATAM_BANKER_SHARE)
        fam[banker] = self.bankers[_draw(self.banker_cdf, rng.random(int(banker.sum())))]
        outbreak = win & self.c_br[client] & (rng.random(m) < self.ob_p[day])
        fam[outbreak] = self.qakbot

        # hash and detection name (skewed within the family; a hash keeps one name)
        u = rng.random(m)
        rank = np.floor(self.hash_n[fam] * u**2.5).astype(np.int64)
        rank = np.minimum(rank, self.hash_n[fam] - 1)
        hash_idx = self.hash_off[fam] + rank
        name_idx = np.where(
            etype == 1,
            self.beta_off[fam] + rank % self.beta_n[fam],
            self.name_off[fam] + rank % self.name_n[fam],
        )
        ob_rank = np.floor(self.ob_hash_n * u**1.5).astype(np.int64)
        hash_idx = np.where(outbreak, self.ob_hash_off + ob_rank, hash_idx)
        name_idx = np.where(outbreak, self.ob_name_off + ob_rank % self.ob_name_n, name_idx)

        # blocked URLs (skewed over a shuffled pool)
        nu = len(self.url_pool)
        url_idx = np.minimum(np.floor(nu * rng.random(m) ** 2).astype(np.int64), nu - 1)
        name_idx = np.where(is_url, self.url_name_off + self.url_cat[url_idx], name_idx)

        # crashes: skewed signatures per OS group; the spike version mostly crashes in one place
        sig = np.empty(m, dtype=np.int64)
        u = rng.random(m)
        for g, cdf in enumerate(self.sig_cdf):
            sel = group == g
            sig[sel] = self.sig_off[g] + _draw(cdf, u[sel])
        sig = np.where(spike & (rng.random(m) < 0.7), self.spike_sig, sig)

        hits = np.where(etype == 2, np.minimum(rng.zipf(2.2, m), 10_000), 1).astype(np.int64)

        raw = _random_bytes(rng, m, 16)
        raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # uuid4 version and variant bits
        raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80

        def take(pool: pa.Array, idx: np.ndarray, present: np.ndarray | None = None) -> pa.Array:
            """pool[idx], null where present is False."""
            return pool.take(pa.array(idx, mask=None if present is None else ~present))

        det_or_url = is_det | is_url
        arrays = [
            _hex(raw),
            take(self.type_pool, etype),
            pa.array(np.full(m, SCHEMA_VERSION, np.int32)),
            pa.array(ts, pa.timestamp("us", tz="UTC")),
            pa.array(event_date, pa.date32()),
            take(self.client_pool, client),
            take(self.product_pool, self.c_product[client]),
            take(self.version_pool, version),
            take(self.os_pool, self.c_os[client]),
            take(self.country_pool, self.c_country[client]),
            take(self.name_pool, name_idx, det_or_url),
            take(self.family_pool, fam, is_det),
            take(self.hash_pool, hash_idx, is_det),
            take(self.url_pool, url_idx, is_url),
            take(self.domain_pool, url_idx, is_url),
            pa.array(hits, mask=is_crash),
            take(self.sig_pool, sig, is_crash),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=EVENT_SCHEMA)


def generate_events(
    n: int,
    *,
    seed: int = 7,
    start: datetime | date = date(2026, 10, 1),
    days: int = 30,
    url_dir: Path | None = None,
    batch_size: int = 250_000,
) -> Iterator[pa.RecordBatch]:
    """Yield n synthetic events as record batches of at most batch_size rows with EVENT_SCHEMA.

    Deterministic for a seed (and independent of batch_size). Planted patterns: see
    planted_patterns(start=..., days=...).
    """
    if n < 0:
        raise InputError(f"cannot generate {n} events", "Pass a non-negative count")
    if days < 1:
        raise InputError(f"days must be at least 1, got {days}")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    if n == 0:
        return
    model = _Model(n, seed, start, days, url_dir)
    pending: list[pa.RecordBatch] = []
    have = 0
    for index, lo in enumerate(range(0, n, BLOCK_ROWS)):
        blk = model.block(seed, index, min(BLOCK_ROWS, n - lo))
        pending.append(blk)
        have += blk.num_rows
        while have >= batch_size:
            merged = pending[0] if len(pending) == 1 else pa.concat_batches(pending)
            yield merged.slice(0, batch_size) if merged.num_rows > batch_size else merged
            rest = merged.slice(batch_size)
            pending = [rest] if rest.num_rows else []
            have = rest.num_rows
    if have:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)


def sample_table(n: int, **kw: Any) -> pa.Table:
    """generate_events collected into one table (EVENT_SCHEMA)."""
    return pa.Table.from_batches(list(generate_events(n, **kw)), schema=EVENT_SCHEMA)


def _json_view(batch: pa.RecordBatch) -> pa.RecordBatch:
    """ts as an ISO 8601 string ending in Z, which DuckDB and pyarrow read back as a timestamp."""
    i = batch.schema.get_field_index("ts")
    iso = pc.strftime(batch.column(i), format="%Y-%m-%dT%H:%M:%SZ")
    return batch.set_column(i, pa.field("ts", pa.string()), iso)


def write_sample(path: Path, n: int, *, fmt: str = "parquet", **kw: Any) -> int:
    """Write n events to one parquet, jsonl or csv file (.gz: gzip); return the row count."""
    path = Path(path)
    fmt = {"json": "jsonl", "ndjson": "jsonl"}.get(fmt, fmt)
    if fmt not in ("parquet", "jsonl", "csv"):
        raise InputError(f"unknown sample format '{fmt}'", "Use parquet, jsonl or csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    batches = generate_events(n, **kw)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(path, EVENT_SCHEMA, compression="zstd") as writer:
            for b in batches:
                writer.write_batch(b)
                rows += b.num_rows
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        with (
            pa.output_stream(path, compression="detect") as sink,
            pcsv.CSVWriter(sink, EVENT_SCHEMA) as writer,
        ):
            for b in batches:
                writer.write_batch(b)
                rows += b.num_rows
    else:
        import duckdb

        counted: list[int] = []

        def views() -> Iterator[pa.RecordBatch]:
            """The batches with ts as ISO strings, counting rows."""
            for b in batches:
                counted.append(b.num_rows)
                yield _json_view(b)

        schema = EVENT_SCHEMA.set(EVENT_SCHEMA.get_field_index("ts"), pa.field("ts", pa.string()))
        con = duckdb.connect()
        try:
            con.register("sample_events", pa.RecordBatchReader.from_batches(schema, views()))
            target = str(path).replace("'", "''")
            con.execute(f"COPY (SELECT * FROM sample_events) TO '{target}' (FORMAT JSON)")
        finally:
            con.close()
        rows = sum(counted)
    return rows
