-- Legitimate analyst queries: every line must be ACCEPTED for role analyst and,
-- where the dialect runs here, return the same rows with and without the guard.
-- Format: <dialects: all, or comma-separated sqlite,postgres,snowflake> ||| <sql>   (one query per line)
all ||| SELECT region, COUNT(*) AS customers FROM customers GROUP BY region ORDER BY region
all ||| SELECT plan, COUNT(*) AS n FROM customers WHERE churned_at IS NULL GROUP BY plan ORDER BY n DESC, plan
all ||| SELECT industry, COUNT(*) AS n FROM customers GROUP BY industry HAVING COUNT(*) > 1 ORDER BY industry
all ||| SELECT c.region, COUNT(DISTINCT u.user_id) AS users FROM customers c JOIN user_profiles u ON u.customer_id = c.customer_id GROUP BY c.region ORDER BY c.region
all ||| SELECT u.platform, COUNT(*) AS sessions FROM sessions s JOIN user_profiles u ON u.user_id = s.user_id GROUP BY u.platform ORDER BY u.platform
all ||| SELECT event_name, COUNT(*) AS n FROM events GROUP BY event_name ORDER BY event_name
all ||| SELECT event_name, COUNT(DISTINCT user_id) AS users FROM events GROUP BY event_name ORDER BY users DESC, event_name
all ||| SELECT platform, signup_channel, COUNT(*) AS n FROM user_profiles GROUP BY platform, signup_channel ORDER BY platform, signup_channel
all ||| SELECT country, COUNT(*) AS n FROM user_profiles GROUP BY country ORDER BY n DESC, country LIMIT 5
all ||| SELECT status, COUNT(*) AS n, SUM(amount_usd) AS total FROM billing_history GROUP BY status ORDER BY status
all ||| SELECT plan, AVG(mrr_usd) AS avg_mrr FROM customer_contracts GROUP BY plan ORDER BY plan
all ||| SELECT plan, MIN(mrr_usd) AS lo, MAX(mrr_usd) AS hi FROM customer_contracts GROUP BY plan ORDER BY plan
all ||| SELECT priority, COUNT(*) AS opened, COUNT(resolved_at) AS resolved FROM support_tickets GROUP BY priority ORDER BY priority
all ||| SELECT category, COUNT(*) AS n FROM support_tickets WHERE priority IN ('high', 'urgent') GROUP BY category ORDER BY category
all ||| SELECT COUNT(*) AS n FROM customers WHERE churned_at IS NOT NULL
all ||| SELECT COUNT(*) AS n FROM events WHERE event_name = 'checkout_completed'
all ||| SELECT COUNT(DISTINCT session_id) AS sessions FROM events WHERE event_name = 'checkout_started'
all ||| SELECT region, SUM(CASE WHEN churned_at IS NOT NULL THEN 1 ELSE 0 END) AS churned, COUNT(*) AS total FROM customers GROUP BY region ORDER BY region
all ||| SELECT CASE WHEN plan = 'enterprise' THEN 'large' ELSE 'small' END AS segment, COUNT(*) AS n FROM customers GROUP BY CASE WHEN plan = 'enterprise' THEN 'large' ELSE 'small' END ORDER BY segment
all ||| SELECT c.plan, COUNT(t.ticket_id) AS tickets FROM customers c LEFT JOIN support_tickets t ON t.customer_id = c.customer_id GROUP BY c.plan ORDER BY c.plan
all ||| SELECT c.customer_id, c.region FROM customers c WHERE c.customer_id IN (SELECT customer_id FROM support_tickets WHERE priority = 'urgent') ORDER BY c.customer_id LIMIT 50
all ||| SELECT c.customer_id FROM customers c WHERE EXISTS (SELECT 1 FROM billing_history b WHERE b.customer_id = c.customer_id AND b.status = 'failed') ORDER BY c.customer_id LIMIT 50
all ||| SELECT c.customer_id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM support_tickets t WHERE t.customer_id = c.customer_id) ORDER BY c.customer_id LIMIT 50
all ||| SELECT region FROM customers UNION SELECT plan FROM customers ORDER BY 1
all ||| SELECT platform AS p FROM user_profiles UNION ALL SELECT platform FROM sessions ORDER BY 1 LIMIT 100
all ||| SELECT platform FROM user_profiles INTERSECT SELECT platform FROM sessions ORDER BY 1
all ||| SELECT country FROM user_profiles EXCEPT SELECT country FROM sessions ORDER BY 1
all ||| WITH per_customer AS (SELECT customer_id, COUNT(*) AS users FROM user_profiles GROUP BY customer_id) SELECT MAX(users) AS most, MIN(users) AS fewest FROM per_customer
all ||| WITH t AS (SELECT customer_id, COUNT(*) AS n FROM support_tickets GROUP BY customer_id) SELECT c.plan, AVG(t.n) AS avg_tickets FROM t JOIN customers c ON c.customer_id = t.customer_id GROUP BY c.plan ORDER BY c.plan
all ||| WITH a AS (SELECT user_id FROM events WHERE event_name = 'checkout_started'), b AS (SELECT user_id FROM events WHERE event_name = 'checkout_completed') SELECT COUNT(DISTINCT a.user_id) AS started, COUNT(DISTINCT b.user_id) AS completed FROM a LEFT JOIN b ON a.user_id = b.user_id
all ||| WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10) SELECT x FROM n ORDER BY x
all ||| WITH RECURSIVE tiers(level) AS (SELECT 1 UNION ALL SELECT level + 1 FROM tiers WHERE level < 3) SELECT t.level, COUNT(c.customer_id) AS n FROM tiers t LEFT JOIN customers c ON c.customer_id % 3 = t.level - 1 GROUP BY t.level ORDER BY t.level
all ||| SELECT customer_id, mrr_usd, RANK() OVER (ORDER BY mrr_usd DESC, customer_id) AS r FROM customer_contracts ORDER BY r, customer_id LIMIT 20
all ||| SELECT plan, customer_id, ROW_NUMBER() OVER (PARTITION BY plan ORDER BY customer_id) AS rn FROM customers ORDER BY plan, rn LIMIT 30
all ||| SELECT customer_id, amount_usd, SUM(amount_usd) OVER (PARTITION BY customer_id ORDER BY invoice_id) AS running FROM billing_history ORDER BY customer_id, invoice_id LIMIT 50
all ||| SELECT customer_id, invoice_id, LAG(amount_usd) OVER (PARTITION BY customer_id ORDER BY invoice_id) AS previous FROM billing_history ORDER BY customer_id, invoice_id LIMIT 50
all ||| SELECT customer_id, invoice_id, LEAD(status) OVER (PARTITION BY customer_id ORDER BY invoice_id) AS next_status FROM billing_history ORDER BY customer_id, invoice_id LIMIT 50
all ||| SELECT plan, customer_id, DENSE_RANK() OVER (PARTITION BY plan ORDER BY customer_id DESC) AS d FROM customers ORDER BY plan, d LIMIT 30
all ||| SELECT region, plan, n, SUM(n) OVER (PARTITION BY region) AS region_total FROM (SELECT region, plan, COUNT(*) AS n FROM customers GROUP BY region, plan) t ORDER BY region, plan
all ||| SELECT t.region, t.n FROM (SELECT region, COUNT(*) AS n FROM customers GROUP BY region) AS t WHERE t.n > 1 ORDER BY t.region
all ||| SELECT x.plan, x.avg_mrr FROM (SELECT plan, AVG(mrr_usd) AS avg_mrr FROM customer_contracts GROUP BY plan) x ORDER BY x.avg_mrr DESC
sqlite,postgres ||| SELECT "region", COUNT(*) AS n FROM "customers" GROUP BY "region" ORDER BY "region"
snowflake ||| SELECT "REGION", COUNT(*) AS n FROM "CUSTOMERS" GROUP BY "REGION" ORDER BY "REGION"
all ||| SELECT Region, COUNT(*) AS n FROM Customers GROUP BY Region ORDER BY Region
all ||| SELECT c.REGION AS r, COUNT(*) AS n FROM CUSTOMERS AS c GROUP BY c.REGION ORDER BY r
all ||| SELECT COALESCE(CAST(churned_at AS TEXT), 'active') AS state, COUNT(*) AS n FROM customers GROUP BY COALESCE(CAST(churned_at AS TEXT), 'active') ORDER BY n DESC LIMIT 1
all ||| SELECT NULLIF(priority, 'low') AS p, COUNT(*) AS n FROM support_tickets GROUP BY NULLIF(priority, 'low') ORDER BY n DESC
all ||| SELECT UPPER(region) AS r, LOWER(plan) AS p, COUNT(*) AS n FROM customers GROUP BY UPPER(region), LOWER(plan) ORDER BY r, p
all ||| SELECT LENGTH(event_name) AS len, COUNT(*) AS n FROM events GROUP BY LENGTH(event_name) ORDER BY len
all ||| SELECT SUBSTR(country, 1, 1) AS initial, COUNT(*) AS n FROM user_profiles GROUP BY SUBSTR(country, 1, 1) ORDER BY initial
all ||| SELECT REPLACE(signup_channel, '_', ' ') AS channel, COUNT(*) AS n FROM user_profiles GROUP BY REPLACE(signup_channel, '_', ' ') ORDER BY channel
all ||| SELECT TRIM(plan) AS plan, COUNT(*) AS n FROM customers GROUP BY TRIM(plan) ORDER BY plan
all ||| SELECT ROUND(AVG(mrr_usd), 2) AS avg_mrr FROM customer_mrr_daily
all ||| SELECT ABS(MIN(mrr_usd) - MAX(mrr_usd)) AS spread FROM customer_contracts
all ||| SELECT region, plan FROM customers GROUP BY region, plan ORDER BY region, plan
all ||| SELECT DISTINCT region FROM customers ORDER BY region
all ||| SELECT DISTINCT platform, country FROM sessions ORDER BY platform, country LIMIT 100
all ||| SELECT COUNT(*) FROM customers c CROSS JOIN (SELECT 1 AS one) AS k
all ||| SELECT c.region, COUNT(*) AS n FROM customers c INNER JOIN customer_contracts k ON k.customer_id = c.customer_id WHERE k.status = 'active' GROUP BY c.region ORDER BY c.region
all ||| SELECT c.plan, k.plan AS contract_plan, COUNT(*) AS n FROM customers c JOIN customer_contracts k ON k.customer_id = c.customer_id GROUP BY c.plan, k.plan ORDER BY c.plan, k.plan
all ||| SELECT u.signup_channel, COUNT(DISTINCT e.user_id) AS buyers FROM user_profiles u JOIN events e ON e.user_id = u.user_id WHERE e.event_name = 'checkout_completed' GROUP BY u.signup_channel ORDER BY u.signup_channel
all ||| SELECT s.platform, COUNT(e.event_id) AS events FROM sessions s LEFT JOIN events e ON e.session_id = s.session_id GROUP BY s.platform ORDER BY s.platform
all ||| SELECT c.region, t.priority, COUNT(*) AS n FROM support_tickets t JOIN customers c ON c.customer_id = t.customer_id GROUP BY c.region, t.priority ORDER BY c.region, t.priority
all ||| SELECT region, COUNT(*) AS n FROM customers WHERE plan <> 'starter' AND region IN ('NA', 'EMEA') GROUP BY region ORDER BY region
all ||| SELECT region, COUNT(*) AS n FROM customers WHERE region NOT IN ('APAC') GROUP BY region ORDER BY region
all ||| SELECT plan, COUNT(*) AS n FROM customers WHERE industry LIKE 'f%' GROUP BY plan ORDER BY plan
all ||| SELECT plan, COUNT(*) AS n FROM customers WHERE customer_id BETWEEN 10 AND 100 GROUP BY plan ORDER BY plan
all ||| SELECT COUNT(*) AS n FROM billing_history WHERE paid_at IS NULL AND status <> 'paid'
all ||| SELECT status, COUNT(*) AS n FROM customer_contracts WHERE mrr_usd >= 1000 GROUP BY status ORDER BY status
all ||| SELECT customer_id, COUNT(*) AS invoices FROM billing_history GROUP BY customer_id ORDER BY invoices DESC, customer_id LIMIT 10
all ||| SELECT plan, SUM(mrr_usd) AS mrr FROM customer_mrr_daily WHERE snapshot_date = (SELECT MAX(snapshot_date) FROM customer_mrr_daily) GROUP BY plan ORDER BY plan
all ||| SELECT COUNT(DISTINCT customer_id) AS paying FROM customer_mrr_daily WHERE snapshot_date = (SELECT MIN(snapshot_date) FROM customer_mrr_daily)
all ||| SELECT region, COUNT(*) AS n FROM customers GROUP BY region ORDER BY COUNT(*) DESC, region LIMIT 2 OFFSET 1
all ||| SELECT 1 AS one
all ||| SELECT 1 + 1 AS two, 'x' AS letter
all ||| SELECT COUNT(*) AS n FROM (SELECT DISTINCT user_id FROM events) AS active
all ||| SELECT MAX(n) AS max_events FROM (SELECT session_id, COUNT(*) AS n FROM events GROUP BY session_id) s
all ||| SELECT AVG(n) AS avg_events FROM (SELECT session_id, COUNT(*) AS n FROM events GROUP BY session_id) s
all ||| SELECT priority, AVG(CASE WHEN resolved_at IS NULL THEN 0 ELSE 1 END) AS resolved_share FROM support_tickets GROUP BY priority ORDER BY priority
sqlite,postgres ||| SELECT category, COUNT(*) FILTER (WHERE priority = 'urgent') AS urgent FROM support_tickets GROUP BY category ORDER BY category
all ||| SELECT region, plan, COUNT(*) AS n FROM customers GROUP BY region, plan HAVING COUNT(*) >= 2 ORDER BY region, plan
all ||| SELECT e.event_name, COUNT(*) AS n FROM events AS e WHERE e.user_id IN (SELECT user_id FROM user_profiles WHERE platform = 'ios') GROUP BY e.event_name ORDER BY e.event_name
all ||| SELECT k.status, COUNT(*) AS n FROM customer_contracts k WHERE k.customer_id IN (SELECT customer_id FROM customers WHERE churned_at IS NOT NULL) GROUP BY k.status ORDER BY k.status
all ||| SELECT (SELECT COUNT(*) FROM customers) AS customers, (SELECT COUNT(*) FROM user_profiles) AS users
all ||| SELECT c.region, (SELECT COUNT(*) FROM support_tickets t WHERE t.customer_id = c.customer_id) AS tickets FROM customers c ORDER BY tickets DESC, c.customer_id LIMIT 10
all ||| SELECT plan, COUNT(*) AS n FROM customers GROUP BY plan UNION ALL SELECT 'all', COUNT(*) FROM customers ORDER BY plan
all ||| SELECT u.country, u.platform, COUNT(*) AS n FROM user_profiles u GROUP BY u.country, u.platform ORDER BY n DESC, u.country, u.platform LIMIT 10
all ||| SELECT CAST(customer_id AS TEXT) AS id_text FROM customers ORDER BY customer_id LIMIT 5
all ||| SELECT customer_id % 10 AS bucket, COUNT(*) AS n FROM customers GROUP BY customer_id % 10 ORDER BY bucket
all ||| SELECT region, COUNT(*) * 100 / (SELECT COUNT(*) FROM customers) AS pct FROM customers GROUP BY region ORDER BY region
all ||| SELECT plan, ROUND(SUM(mrr_usd) * 1.0 / COUNT(DISTINCT customer_id), 2) AS arpa FROM customer_mrr_daily GROUP BY plan ORDER BY plan
sqlite ||| SELECT strftime('%Y-%m', billed_at) AS month, SUM(amount_usd) AS revenue FROM billing_history GROUP BY month ORDER BY month
sqlite ||| SELECT date(occurred_at) AS day, COUNT(DISTINCT user_id) AS dau FROM events GROUP BY date(occurred_at) ORDER BY day DESC LIMIT 14
sqlite ||| SELECT strftime('%w', started_at) AS weekday, COUNT(*) AS sessions FROM sessions GROUP BY weekday ORDER BY weekday
sqlite ||| SELECT date(signed_up_at, 'weekday 0', '-6 days') AS week, COUNT(*) AS signups FROM user_profiles GROUP BY week ORDER BY week DESC LIMIT 8
sqlite ||| SELECT priority, AVG((julianday(resolved_at) - julianday(opened_at)) * 24) AS hours FROM support_tickets WHERE resolved_at IS NOT NULL GROUP BY priority ORDER BY priority
sqlite ||| SELECT strftime('%H', occurred_at) AS hour, COUNT(*) AS n FROM events GROUP BY hour ORDER BY hour
sqlite ||| SELECT COUNT(*) AS n FROM events WHERE occurred_at >= date((SELECT MAX(occurred_at) FROM events), '-7 days')
sqlite ||| SELECT datetime(MAX(started_at)) AS last_session FROM sessions
sqlite ||| SELECT IFNULL(churned_at, 'active') AS state FROM customers GROUP BY IFNULL(churned_at, 'active') ORDER BY COUNT(*) DESC LIMIT 1
sqlite ||| SELECT IIF(plan = 'enterprise', 'big', 'small') AS size, COUNT(*) AS n FROM customers GROUP BY size ORDER BY size
sqlite ||| SELECT group_concat(DISTINCT region) AS regions FROM (SELECT region FROM customers ORDER BY region)
sqlite ||| SELECT printf('%.2f', SUM(amount_usd)) AS total FROM billing_history WHERE status = 'paid'
sqlite ||| SELECT total(amount_usd) AS t FROM billing_history WHERE status = 'refunded'
sqlite ||| SELECT instr(event_name, '_') AS pos, COUNT(*) AS n FROM events GROUP BY pos ORDER BY pos
sqlite ||| SELECT unixepoch(MIN(created_at)) > 0 AS ok FROM customers
sqlite ||| SELECT strftime('%Y', created_at) AS year, COUNT(*) AS n FROM customers GROUP BY year ORDER BY year
postgres ||| SELECT date_trunc('month', billed_at) AS month, SUM(amount_usd) AS revenue FROM billing_history GROUP BY 1 ORDER BY 1
postgres ||| SELECT CAST(occurred_at AS DATE) AS day, COUNT(DISTINCT user_id) AS dau FROM events GROUP BY 1 ORDER BY 1 DESC LIMIT 14
postgres ||| SELECT EXTRACT(DOW FROM started_at) AS weekday, COUNT(*) AS sessions FROM sessions GROUP BY 1 ORDER BY 1
postgres ||| SELECT date_trunc('week', signed_up_at)::date AS week, COUNT(*) AS signups FROM user_profiles GROUP BY 1 ORDER BY 1 DESC LIMIT 8
postgres ||| SELECT priority, AVG(EXTRACT(EPOCH FROM resolved_at - opened_at) / 3600) AS hours FROM support_tickets WHERE resolved_at IS NOT NULL GROUP BY priority ORDER BY priority
postgres ||| SELECT priority, percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM resolved_at - opened_at) / 3600) AS median_hours FROM support_tickets WHERE resolved_at IS NOT NULL GROUP BY priority ORDER BY priority
postgres ||| SELECT EXTRACT(HOUR FROM occurred_at) AS hour, COUNT(*) AS n FROM events GROUP BY 1 ORDER BY 1
postgres ||| SELECT COUNT(*) AS n FROM events WHERE occurred_at >= (SELECT MAX(occurred_at) FROM events) - INTERVAL '7 days'
postgres ||| SELECT to_char(billed_at, 'YYYY-MM') AS month, COUNT(*) AS invoices FROM billing_history GROUP BY 1 ORDER BY 1
postgres ||| SELECT string_agg(DISTINCT region, ',' ORDER BY region) AS regions FROM customers
postgres ||| SELECT region, COUNT(*) AS n FROM customers WHERE plan ILIKE 'ENTER%' GROUP BY region ORDER BY region
postgres ||| SELECT region::text AS r, COUNT(*)::int AS n FROM customers GROUP BY 1 ORDER BY 1
postgres ||| SELECT age(MAX(created_at), MIN(created_at)) IS NOT NULL AS ok FROM customers
postgres ||| SELECT split_part(event_name, '_', 1) AS family, COUNT(*) AS n FROM events GROUP BY 1 ORDER BY 1
postgres ||| SELECT greatest(MAX(mrr_usd), 0) AS top, least(MIN(mrr_usd), 1000000) AS bottom FROM customer_contracts
postgres ||| SELECT EXTRACT(YEAR FROM created_at) AS year, COUNT(*) AS n FROM customers GROUP BY 1 ORDER BY 1
postgres ||| SELECT bool_or(churned_at IS NOT NULL) AS any_churn FROM customers
postgres ||| SELECT region, COUNT(*) AS n FROM customers GROUP BY ROLLUP (region) ORDER BY region NULLS LAST
snowflake ||| SELECT DATE_TRUNC('month', billed_at) AS month, SUM(amount_usd) AS revenue FROM billing_history GROUP BY 1 ORDER BY 1
snowflake ||| SELECT DATEADD(day, -7, MAX(occurred_at)) AS week_ago FROM events
snowflake ||| SELECT DATEDIFF(hour, opened_at, resolved_at) AS hours FROM support_tickets WHERE resolved_at IS NOT NULL LIMIT 10
snowflake ||| SELECT IFF(plan = 'enterprise', 'big', 'small') AS size, COUNT(*) AS n FROM customers GROUP BY 1
snowflake ||| SELECT region, COUNT(*) AS n FROM customers GROUP BY region QUALIFY ROW_NUMBER() OVER (ORDER BY COUNT(*) DESC) <= 3
snowflake ||| SELECT MEDIAN(mrr_usd) AS median_mrr FROM customer_contracts
snowflake ||| SELECT TO_CHAR(billed_at, 'YYYY-MM') AS month, COUNT(*) AS n FROM billing_history GROUP BY 1
snowflake ||| SELECT "REGION", COUNT(*) AS n FROM "CUSTOMERS" GROUP BY "REGION"
snowflake ||| SELECT EXTRACT(year FROM created_at) AS year, COUNT(*) AS n FROM customers GROUP BY 1
snowflake ||| SELECT c.region, COUNT(*) AS n FROM customers c JOIN user_profiles u ON u.customer_id = c.customer_id GROUP BY c.region
-- SELECT * expands to the columns the role may read (same rows where every column is readable)
all ||| SELECT * FROM (SELECT region FROM customers) t ORDER BY 1
all ||| SELECT t.* FROM (SELECT region, plan FROM customers) t ORDER BY region, plan
all ||| SELECT * FROM (SELECT plan, COUNT(*) AS n FROM customers GROUP BY plan) AS s ORDER BY n DESC, plan
all ||| SELECT c.customer_id, s.* FROM customers c JOIN (SELECT customer_id AS cid, COUNT(*) AS tickets FROM support_tickets GROUP BY customer_id) s ON s.cid = c.customer_id ORDER BY c.customer_id LIMIT 20
all ||| WITH r AS (SELECT region, COUNT(*) AS n FROM customers GROUP BY region) SELECT * FROM r ORDER BY region
all ||| SELECT region, plan FROM customers WHERE EXISTS (SELECT * FROM support_tickets t WHERE t.customer_id = customers.customer_id) ORDER BY 1, 2 LIMIT 30
-- JOIN USING on readable columns, aliases that become their expressions
all ||| SELECT customer_id, c.plan, COUNT(*) AS invoices FROM customers c JOIN billing_history b USING (customer_id) GROUP BY customer_id, c.plan ORDER BY customer_id LIMIT 20
all ||| SELECT region AS r, COUNT(*) AS n FROM customers GROUP BY r HAVING COUNT(*) > 1 ORDER BY r
postgres,snowflake ||| SELECT x.a, x.b FROM (SELECT region, plan FROM customers) AS x(a, b) ORDER BY 1, 2 LIMIT 10
all ||| WITH t(a, n) AS (SELECT plan, COUNT(*) FROM customers GROUP BY plan) SELECT a, n FROM t ORDER BY a
