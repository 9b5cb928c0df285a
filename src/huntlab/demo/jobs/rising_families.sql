-- name: rising_families
-- description: Families rising fastest per country: detections in the last days against the days before
-- output: rising_families
-- mode: overwrite
-- params: recent_days=3, min_recent=20
WITH bounds AS (
  SELECT max(event_date) AS last_day FROM events
),
daily AS (
  SELECT e.family, e.country,
         sum(CASE WHEN e.event_date > date_sub(b.last_day, :recent_days) THEN 1 ELSE 0 END) AS recent,
         sum(CASE WHEN e.event_date <= date_sub(b.last_day, :recent_days) THEN 1 ELSE 0 END) AS before,
         count(DISTINCT e.event_date) AS active_days,
         datediff(b.last_day, min(e.event_date)) + 1 AS span_days
  FROM events e CROSS JOIN bounds b
  WHERE e.event_type IN ('blocked_infection', 'beta_detection', 'detection_hits')
    AND e.family IS NOT NULL
  GROUP BY e.family, e.country, b.last_day
)
SELECT family, country, recent, before,
       round(recent / :recent_days, 2) AS recent_per_day,
       round(before / greatest(span_days - :recent_days, 1), 2) AS before_per_day,
       round((recent / :recent_days + 1) / (before / greatest(span_days - :recent_days, 1) + 1), 2) AS growth
FROM daily
WHERE recent >= :min_recent
ORDER BY growth DESC, family, country
LIMIT 50
