-- Revenue by region and nation with subtotals and a grand total (ROLLUP over a join), the
-- subtotal rows marked by grouping(), HAVING on a set's aggregate, ordered by the marker.
select r_name, n_name, grouping(r_name, n_name) as level,
  sum(l_extendedprice * (1 - l_discount)) as revenue, count(distinct o_custkey) as customers
from lineitem
join orders on l_orderkey = o_orderkey
join customer on o_custkey = c_custkey
join nation on c_nationkey = n_nationkey
join region on n_regionkey = r_regionkey
where o_orderdate >= date '1995-01-01' and o_orderdate < date '1996-01-01'
group by rollup (r_name, n_name)
having sum(l_extendedprice) > 0
order by level desc, r_name nulls first, n_name nulls first;
