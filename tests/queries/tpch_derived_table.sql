-- A derived table in FROM: aggregate of an aggregate.
select line_count, count(*) as order_count, sum(total_quantity) as total_quantity
from (
  select l_orderkey, count(*) as line_count, sum(l_quantity) as total_quantity
  from lineitem
  group by l_orderkey
) as per_order
group by line_count
order by line_count;
