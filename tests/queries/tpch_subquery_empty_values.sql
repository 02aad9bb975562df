-- Correlated aggregate subqueries over keys without rows, whose value there is not simply
-- NULL: count(*) + 1 is 1, coalesce(sum(..), 0) is 0, a bare count is 0, a HAVING that
-- removes the empty group gives NULL, and IN over a count matches 0.
SELECT o_orderkey,
       (SELECT count(*) + 1 FROM lineitem
         WHERE l_orderkey = o_orderkey AND l_linenumber > 5) AS lines_plus_one,
       (SELECT coalesce(sum(l_quantity), 0) FROM lineitem
         WHERE l_orderkey = o_orderkey AND l_linenumber > 5) AS late_quantity,
       (SELECT count(*) FROM lineitem
         WHERE l_orderkey = o_orderkey AND l_linenumber > 5) AS late_lines,
       (SELECT count(*) FROM lineitem
         WHERE l_orderkey = o_orderkey AND l_linenumber > 5 HAVING count(*) > 1) AS several_late,
       0 IN (SELECT count(*) FROM lineitem
              WHERE l_orderkey = o_orderkey AND l_linenumber > 5) AS none_late
FROM orders
WHERE o_orderkey < 400
ORDER BY o_orderkey;
