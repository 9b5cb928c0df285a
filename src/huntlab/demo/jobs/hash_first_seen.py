"""First and last seen of every detected file hash, merged by hash into a lasting table."""

from pyspark.sql import functions as F

from huntlab import job


@job(output="hash_first_seen", mode="merge", keys=["file_hash"])
def hash_first_seen(events):
    """First and last seen, spread and family of each detected file hash."""
    detections = events.where(
        F.col("event_type").isin("blocked_infection", "beta_detection", "detection_hits")
        & F.col("file_hash").isNotNull()
    )
    return (
        detections.groupBy("file_hash")
        .agg(
            F.min("family").alias("family"),
            F.min("ts").alias("first_seen"),
            F.max("ts").alias("last_seen"),
            F.countDistinct("client_id").alias("clients"),
            F.countDistinct("country").alias("countries"),
            F.sum("hit_count").alias("hits"),
        )
        .orderBy(F.col("clients").desc(), F.col("file_hash"))
    )
