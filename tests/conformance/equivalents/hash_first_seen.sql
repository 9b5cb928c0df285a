SELECT file_hash, min(family) AS family, min(ts) AS first_seen, max(ts) AS last_seen,
       count(DISTINCT client_id) AS clients, count(DISTINCT country) AS countries,
       sum(hit_count) AS hits
FROM events
WHERE event_type IN ('blocked_infection', 'beta_detection', 'detection_hits')
  AND file_hash IS NOT NULL
GROUP BY file_hash
