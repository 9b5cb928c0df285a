-- name: outbreak_by_family_country
-- description: Detections per malware family and country (3-hour windows); alerts on an outbreak
-- output: stream_outbreaks
-- window: 3 hours
-- watermark: 2 hours
-- key: family, country
-- metric: detections
-- support: detections >= 5
-- threshold: 0.45
-- fill: none
-- warmup: 4
-- noise: poisson
-- detector: robust
SELECT window_start, family, country,
       count(*) AS detections,
       sum(coalesce(hit_count, 1)) AS hits
FROM events
WHERE event_type IN ('blocked_infection', 'beta_detection', 'detection_hits')
  AND family IS NOT NULL
GROUP BY window_start, family, country
