WITH blocked AS (
  SELECT * FROM events WHERE event_type = 'blocked_url'
),
hourly AS (
  SELECT domain, date_trunc('HOUR', ts) AS peak_hour, count(*) AS peak_blocks,
         row_number() OVER (PARTITION BY domain ORDER BY count(*) DESC, date_trunc('HOUR', ts)) AS rank
  FROM blocked GROUP BY domain, date_trunc('HOUR', ts)
),
totals AS (
  SELECT domain, count(*) AS blocks, count(DISTINCT client_id) AS clients,
         count(DISTINCT country) AS countries, count(DISTINCT event_date) AS days
  FROM blocked GROUP BY domain
)
SELECT t.domain, t.blocks, t.clients, t.countries, t.days, h.peak_hour, h.peak_blocks
FROM totals t LEFT JOIN hourly h ON t.domain = h.domain AND h.rank = 1
ORDER BY t.clients DESC, t.domain
LIMIT 100
