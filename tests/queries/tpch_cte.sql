-- A CTE with an aggregate, filtered and sorted by the outer query.
with supplier_revenue as (
  select l_suppkey, sum(l_extendedprice * (1 - l_discount)) as revenue, count(*) as line_count
  from lineitem
  where l_shipdate >= date '1996-01-01'
  group by l_suppkey
)
select l_suppkey, revenue, line_count
from supplier_revenue
where line_count > 100
order by revenue desc, l_suppkey
limit 15;
