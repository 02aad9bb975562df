-- Subqueries in JOIN ... ON: an IN set in an inner join's condition, a scalar subquery in a
-- LEFT JOIN's condition correlated with the preserved side, an EXISTS in a RIGHT JOIN's, and a
-- correlated count compared in a LEFT JOIN's.
SELECT 'inner_in' AS form, count(*) AS n, count(o_orderkey) AS matched
FROM orders JOIN customer
  ON o_custkey = c_custkey AND c_nationkey IN (SELECT n_nationkey FROM nation WHERE n_regionkey = 1)
UNION ALL
SELECT 'left_scalar', count(*), count(o_orderkey)
FROM customer c LEFT JOIN orders o
  ON o.o_custkey = c.c_custkey
 AND o.o_totalprice > (SELECT avg(c2.c_acctbal) * 50 FROM customer c2
                        WHERE c2.c_nationkey = c.c_nationkey)
UNION ALL
SELECT 'right_exists', count(*), count(o_orderkey)
FROM orders RIGHT JOIN customer
  ON o_custkey = c_custkey
 AND EXISTS (SELECT 1 FROM lineitem WHERE l_orderkey = o_orderkey AND l_quantity > 49)
UNION ALL
SELECT 'left_count', count(*), count(o_orderkey)
FROM customer c LEFT JOIN orders o
  ON o.o_custkey = c.c_custkey
 AND (SELECT count(*) FROM lineitem WHERE l_orderkey = o.o_orderkey) > 5
ORDER BY form;
