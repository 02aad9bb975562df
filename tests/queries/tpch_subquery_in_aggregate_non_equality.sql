-- IN and EXISTS conjuncts of a WHERE whose subquery aggregates or has a LIMIT and is
-- correlated by an inequality: the aggregate (and the LIMIT) must see every row the
-- inequality selects, so these go through the domain join rather than a residual condition
-- on a semi join (which would aggregate per inner key: a wrong answer).
SELECT 'in_max' AS form, count(*) AS n
FROM orders o
WHERE o_totalprice IN (SELECT max(o2.o_totalprice) FROM orders o2 WHERE o2.o_custkey <= o.o_custkey)
UNION ALL
SELECT 'in_top3', count(*)
FROM orders o
WHERE o_totalprice IN (SELECT o2.o_totalprice FROM orders o2 WHERE o2.o_custkey <= o.o_custkey
                       ORDER BY o2.o_totalprice DESC LIMIT 3)
UNION ALL
SELECT 'exists_limit', count(*)
FROM orders o
WHERE EXISTS (SELECT 1 FROM orders o2
              WHERE o2.o_custkey < o.o_custkey AND o2.o_totalprice > o.o_totalprice LIMIT 1)
UNION ALL
SELECT 'in_plain', count(*)
FROM orders o
WHERE o_orderkey IN (SELECT l_orderkey FROM lineitem WHERE l_shipdate > o.o_orderdate + 100)
ORDER BY form;
