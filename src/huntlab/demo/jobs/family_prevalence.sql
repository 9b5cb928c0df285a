-- name: family_prevalence
-- description: Prevalence and spread of each detection family: detections, clients, countries, first and last seen
-- output: family_prevalence
-- mode: overwrite
-- params: min_clients=1
SELECT
  family,
  count(*)                                     AS detections,
  count(DISTINCT client_id)                    AS clients,
  count(DISTINCT country)                      AS countries,
  count(DISTINCT file_hash)                    AS hashes,
  sum(CASE WHEN event_type = 'beta_detection' THEN 1 ELSE 0 END) AS beta_detections,
  min(ts)                                      AS first_seen,
  max(ts)                                      AS last_seen
FROM events
WHERE event_type IN ('blocked_infection', 'beta_detection', 'detection_hits')
  AND family IS NOT NULL
GROUP BY family
HAVING count(DISTINCT client_id) >= :min_clients
ORDER BY clients DESC, family
