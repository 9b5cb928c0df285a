SELECT family, sum(hit_count) AS hits, count(*) AS reports
FROM events WHERE event_type = 'detection_hits' AND family IS NOT NULL
GROUP BY family
