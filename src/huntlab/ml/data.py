"""The labeled URL collections of shared/data/urls as one Arrow table (url, label, collection)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from huntlab.errors import InputError

CLASSES = ("benign", "phishing", "malware", "spam")
COLLECTIONS = ("iscx2016", "esdaung2021", "phishstorm2014")
URL_SCHEMA = pa.schema([("url", pa.string()), ("label", pa.string()), ("collection", pa.string())])


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln]


def _from_lines(files: dict[str, Path], collection: str) -> pa.Table:
    urls: list[str] = []
    labels: list[str] = []
    for label, path in files.items():
        got = _lines(path)
        urls += got
        labels += [label] * len(got)
    return pa.table(
        {"url": urls, "label": labels, "collection": [collection] * len(urls)}, schema=URL_SCHEMA
    )


def _esdaung(path: Path) -> pa.Table:
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    t = pcsv.read_csv(
        path,
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types={"url": pa.string(), "label": pa.string()}
        ),
    )
    label = pc.utf8_lower(pc.utf8_trim_whitespace(t["label"]))
    bad = pc.invert(pc.is_in(label, pa.array(CLASSES)))
    if pc.any(bad).as_py():
        raise InputError(f"{path}: unknown labels {pc.unique(pc.filter(label, bad)).to_pylist()}")
    n = t.num_rows
    return pa.table(
        {"url": t["url"], "label": label, "collection": pa.array(["esdaung2021"] * n)},
        schema=URL_SCHEMA,
    )


def read_collection(urls_dir: Path, name: str) -> pa.Table:
    """One labeled collection from `urls_dir` (the shared data's urls/ folder)."""
    if name == "iscx2016":
        d = urls_dir / "iscx-url-2016"
        return _from_lines({c: d / f"{c}.txt" for c in CLASSES}, name)
    if name == "phishstorm2014":
        d = urls_dir / "phishstorm-2014"
        return _from_lines({"benign": d / "benign.txt", "phishing": d / "phishing.txt"}, name)
    if name == "esdaung2021":
        return _esdaung(urls_dir / "esdaung-2021" / "urls.csv")
    raise InputError(f"unknown URL collection {name!r}", f"Known: {', '.join(COLLECTIONS)}")


def read_collections(urls_dir: Path, names: list[str] | None = None) -> pa.Table:
    """Several collections stacked; every one must exist where the shared data README says."""
    if not urls_dir.is_dir():
        raise InputError(
            f"URL data folder {urls_dir} does not exist",
            "Pass --source pointing at shared/data/urls",
        )
    return pa.concat_tables([read_collection(urls_dir, n) for n in names or COLLECTIONS])


def read_popular(urls_dir: Path) -> pa.Table:
    """Tranco's top domains in rank order (domain, rank)."""
    path = urls_dir / "tranco-2025" / "top-10k.csv"
    if not path.is_file():
        raise InputError(f"popular-domain list {path} not found", "Check --source")
    domains = [d.strip().lower() for d in _lines(path)[1:]]
    return pa.table({"domain": domains, "rank": list(range(1, len(domains) + 1))})
