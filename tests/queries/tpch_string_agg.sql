-- string_agg with a separator, ORDER BY keys (DESC, ties broken by a second key), FILTER,
-- the group_concat spelling and the default separator.
SELECT o_orderpriority,
       string_agg(o_clerk, '|' ORDER BY o_totalprice DESC, o_orderkey) FILTER (WHERE o_orderkey < 100) AS clerks,
       string_agg(CAST(o_orderkey AS VARCHAR), ';' ORDER BY o_orderkey) FILTER (WHERE o_orderkey < 40) AS keys,
       group_concat(o_orderstatus ORDER BY o_orderkey) FILTER (WHERE o_orderkey < 30) AS statuses,
       length(string_agg(o_comment, '' ORDER BY o_comment NULLS FIRST)) AS len,
       string_agg(o_clerk) FILTER (WHERE o_orderkey < 0) AS none
FROM orders
GROUP BY 1
ORDER BY 1;
