"""Detection hit counts per family, written map-reduce style."""

from huntlab import mapreduce


@mapreduce(output="hits_by_family")
def hits_by_family(events):
    """Total hits and reporting events per detection family."""
    return (
        events.filter(lambda e: e["event_type"] == "detection_hits" and e["family"] is not None)
        .map(lambda e: (e["family"], (e["hit_count"] or 0, 1)))
        .reduceByKey(lambda a, b: (a[0] + b[0], a[1] + b[1]))
        .map(lambda kv: {"family": kv[0], "hits": kv[1][0], "reports": kv[1][1]})
        .to_arrow()
        .sort_by([("hits", "descending"), ("family", "ascending")])
    )
