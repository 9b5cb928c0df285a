-- name: published_family_by_country
-- description: Detections per family and country from client upstream, safe to share (k-anonymous)
-- output: published_family_by_country
-- mode: overwrite
-- public: true
-- clients_column: clients
SELECT family, country, count(*) AS detections, count(DISTINCT client_id) AS clients
FROM (
  SELECT family, country, client_id FROM upstream_blocked_infection
  UNION ALL
  SELECT family, country, client_id FROM upstream_detection_hits
) d
GROUP BY family, country
ORDER BY detections DESC, family, country
