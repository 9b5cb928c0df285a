-- name: crash_rate_by_version
-- description: Crashes per 1,000 active client-days by product and version, with the top crash signature
-- output: crash_rate_by_version
-- mode: overwrite
WITH client_days AS (
  SELECT DISTINCT product, product_version, client_id, event_date FROM events
),
active AS (
  SELECT product, product_version, count(*) AS client_days,
         count(DISTINCT client_id) AS clients, min(event_date) AS first_day
  FROM client_days GROUP BY product, product_version
),
crashes AS (
  SELECT product, product_version, count(*) AS crashes,
         count(DISTINCT client_id) AS crashing_clients
  FROM events WHERE event_type = 'crash'
  GROUP BY product, product_version
),
signatures AS (
  SELECT product, product_version, crash_signature,
         row_number() OVER (PARTITION BY product, product_version
                            ORDER BY count(*) DESC, crash_signature) AS rn
  FROM events WHERE event_type = 'crash'
  GROUP BY product, product_version, crash_signature
)
SELECT a.product, a.product_version, a.first_day, a.clients, a.client_days,
       coalesce(c.crashes, 0) AS crashes,
       coalesce(c.crashing_clients, 0) AS crashing_clients,
       round(1000.0 * coalesce(c.crashes, 0) / a.client_days, 1) AS crashes_per_1k_client_days,
       s.crash_signature AS top_signature
FROM active a
LEFT JOIN crashes c ON a.product = c.product AND a.product_version = c.product_version
LEFT JOIN signatures s ON a.product = s.product AND a.product_version = s.product_version AND s.rn = 1
ORDER BY crashes_per_1k_client_days DESC, a.product, a.product_version
