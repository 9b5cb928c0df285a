"""family_prevalence written with the PySpark DataFrame API (the bundled job is SQL)."""

from pyspark.sql import functions as F

from huntlab import job


@job()
def family_prevalence_df(events):
    det = events.where(
        F.col("event_type").isin("blocked_infection", "beta_detection", "detection_hits")
        & F.col("family").isNotNull()
    )
    return (
        det.groupBy("family")
        .agg(
            F.count("*").alias("detections"),
            F.countDistinct("client_id").alias("clients"),
            F.countDistinct("country").alias("countries"),
            F.countDistinct("file_hash").alias("hashes"),
            F.sum(F.when(F.col("event_type") == "beta_detection", 1).otherwise(0)).alias(
                "beta_detections"
            ),
            F.min("ts").alias("first_seen"),
            F.max("ts").alias("last_seen"),
        )
        .where(F.col("clients") >= 1)
    )
