-- Correlated subqueries in the select list and HAVING of a grouped SELECT: their outer
-- references are group keys, and they are joined after the aggregation; one is correlated by
-- an inequality, one has its own GROUP BY (at most one row per key), one is a count (0, not
-- NULL, without rows), and a correlated EXISTS sits inside an expression.
SELECT o_custkey,
       count(*) AS orders,
       (SELECT max(c_acctbal) FROM customer WHERE c_custkey = o_custkey) AS balance,
       (SELECT count(*) FROM customer c2
         WHERE c2.c_nationkey = 3 AND c2.c_custkey < o_custkey) AS earlier_in_3,
       (SELECT count(*) FROM lineitem WHERE l_suppkey = o_custkey GROUP BY l_suppkey) AS supplied,
       EXISTS (SELECT 1 FROM customer WHERE c_custkey = o_custkey AND c_mktsegment = 'BUILDING')
         OR count(*) > 20 AS building_or_busy
FROM orders
GROUP BY o_custkey
HAVING sum(o_totalprice) > (SELECT 20 * avg(c_acctbal) FROM customer WHERE c_custkey = o_custkey)
ORDER BY o_custkey;
