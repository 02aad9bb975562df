-- CASE buckets, CAST of a decimal expression, COALESCE over a CASE that can be NULL.
select
  case when l_quantity < 10 then 'small' when l_quantity < 30 then 'medium' else 'large' end as size_class,
  cast(l_discount * 100 as integer) as discount_percent,
  coalesce(case when l_returnflag = 'R' then 'returned' end, 'kept') as returned,
  count(*) as line_count,
  sum(cast(l_quantity as bigint)) as quantity
from lineitem
group by 1, 2, 3
order by size_class, discount_percent, returned;
