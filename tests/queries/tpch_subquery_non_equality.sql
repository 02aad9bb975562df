-- Subqueries correlated by conditions other than equalities, in the select list and in WHERE,
-- decorrelated through the domain of outer values (each computed once per distinct outer
-- value): a count and a sum with an equality plus a band, an average over a sliding key
-- range, and a count over every smaller key (a non-equi join with the domain).
SELECT o_orderkey,
       (SELECT count(*) FROM lineitem
         WHERE l_orderkey = o_orderkey AND l_quantity > o_totalprice / 10000) AS big_lines,
       (SELECT sum(l_extendedprice) FROM lineitem
         WHERE l_orderkey = o_orderkey AND l_shipdate > o_orderdate + 60) AS late_value,
       (SELECT count(*) FROM customer WHERE c_custkey < o_custkey AND c_nationkey = 7) AS before
FROM orders
WHERE o_totalprice > (SELECT avg(l_extendedprice) * 3 FROM lineitem
                       WHERE l_orderkey BETWEEN orders.o_orderkey - 20 AND orders.o_orderkey)
  AND o_orderkey < 3000
ORDER BY o_orderkey;
