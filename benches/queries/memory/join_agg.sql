-- A big join: every lineitem row with its order (the build side is all of orders), then a
-- group-by over a column of each side.
SELECT o_orderpriority, l_shipmode, count(*) AS n, sum(l_extendedprice) AS price
FROM lineitem JOIN orders ON l_orderkey = o_orderkey
GROUP BY o_orderpriority, l_shipmode
