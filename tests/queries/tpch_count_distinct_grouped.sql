-- COUNT(DISTINCT) per group next to plain aggregates.
select o_orderpriority, count(*) as order_count, count(distinct o_custkey) as customers,
  count(distinct o_clerk) as clerks, sum(o_totalprice) as total_price
from orders
group by o_orderpriority
order by o_orderpriority;
