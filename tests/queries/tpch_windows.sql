-- Windows over grouped results (an aggregate of an aggregate), several windows with
-- different partitionings in one SELECT, a window in ORDER BY, QUALIFY, and a moving
-- average over dates.
select o_orderpriority, o_orderstatus,
  count(*) as orders,
  sum(count(*)) over (partition by o_orderpriority) as per_priority,
  round(avg(sum(o_totalprice)) over (partition by o_orderstatus), 2) as avg_status_total,
  rank() over (partition by o_orderstatus order by count(*) desc) as rank_in_status,
  sum(sum(o_totalprice)) over (order by o_orderpriority, o_orderstatus rows between unbounded preceding and current row) as running_total
from orders
group by o_orderpriority, o_orderstatus
qualify rank() over (partition by o_orderstatus order by count(*) desc) <= 3
order by row_number() over (order by o_orderpriority desc, o_orderstatus), 1;
