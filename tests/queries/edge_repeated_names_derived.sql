-- Repeated output names in a derived table become a, a_1, ... (DuckDB's names), so each can
-- be referenced; column aliases rename them by position.
SELECT t.*, t.a_1_1 + 1 AS next, u.y
FROM (SELECT n_regionkey AS a, count(*) AS a, 3 AS a_1 FROM nation GROUP BY 1) t
JOIN (SELECT r_regionkey, r_regionkey * 10 FROM region) u(x, y) ON u.x = t.a
ORDER BY 1;
