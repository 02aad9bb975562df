-- DISTINCT aggregates beside ordinary ones: a distinct count of a high-cardinality string
-- and a distinct sum, next to a sum, an average and count(*), per return flag.
SELECT l_returnflag,
       count(DISTINCT l_comment) AS comments,
       sum(DISTINCT l_quantity) AS quantities,
       sum(l_extendedprice) AS price,
       avg(l_discount) AS discount,
       count(*) AS n
FROM lineitem
GROUP BY l_returnflag
