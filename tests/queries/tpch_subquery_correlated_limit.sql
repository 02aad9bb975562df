-- ORDER BY ... LIMIT inside correlated subqueries: the first order of each customer as a
-- scalar subquery, and EXISTS with LIMIT 1; both apply per correlation key.
SELECT c_custkey,
       (SELECT o_orderkey FROM orders WHERE o_custkey = c_custkey
         ORDER BY o_orderdate, o_orderkey LIMIT 1) AS first_order,
       (SELECT o_totalprice FROM orders WHERE o_custkey = c_custkey
         ORDER BY o_totalprice DESC LIMIT 1 OFFSET 2) AS third_largest
FROM customer
WHERE EXISTS (SELECT 1 FROM orders WHERE o_custkey = c_custkey AND o_totalprice > 100000 LIMIT 1)
  AND c_custkey < 200
ORDER BY c_custkey;
