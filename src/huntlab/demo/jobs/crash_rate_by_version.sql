-- name: crash_rate_by_version
-- description: Crashes per 1,000 active clients by product and version, with the top crash signature
-- output: crash_rate_by_version
-- mode: overwrite
WITH active AS (
  SELECT product, product_version, count(DISTINCT client_id) AS clients
  FROM events GROUP BY product, product_version
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
SELECT a.product, a.product_version, a.clients,
       coalesce(c.crashes, 0) AS crashes,
       coalesce(c.crashing_clients, 0) AS crashing_clients,
       round(1000.0 * coalesce(c.crashes, 0) / a.clients, 2) AS crashes_per_1k_clients,
       s.crash_signature AS top_signature
FROM active a
LEFT JOIN crashes c ON a.product = c.product AND a.product_version = c.product_version
LEFT JOIN signatures s ON a.product = s.product AND a.product_version = s.product_version AND s.rn = 1
ORDER BY crashes_per_1k_clients DESC, a.product, a.product_version
