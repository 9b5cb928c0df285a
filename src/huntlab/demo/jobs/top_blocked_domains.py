"""Top blocked domains: how many clients hit each, on how many days, and its busiest hour."""

from pyspark.sql import Window
from pyspark.sql import functions as F

from huntlab import job


@job(output="top_blocked_domains", params={"top": "100"})
def top_blocked_domains(events, params):
    """The most blocked domains by distinct clients, with the busiest hourly window."""
    blocked = events.where(F.col("event_type") == "blocked_url")
    hourly = (
        blocked.groupBy("domain", F.window("ts", "1 hour"))
        .agg(F.count("*").alias("blocks"))
        .withColumn(
            "rank",
            F.row_number().over(
                Window.partitionBy("domain").orderBy(F.col("blocks").desc(), F.col("window.start"))
            ),
        )
        .where(F.col("rank") == 1)
        .select(
            "domain", F.col("window.start").alias("peak_hour"), F.col("blocks").alias("peak_blocks")
        )
    )
    totals = blocked.groupBy("domain").agg(
        F.count("*").alias("blocks"),
        F.countDistinct("client_id").alias("clients"),
        F.countDistinct("country").alias("countries"),
        F.countDistinct("event_date").alias("days"),
    )
    return (
        totals.join(hourly, on="domain", how="left")
        .orderBy(F.col("clients").desc(), F.col("domain"))
        .limit(int(params["top"]))
    )
