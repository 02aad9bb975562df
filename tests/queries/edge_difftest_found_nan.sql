-- A NaN made by arithmetic (`inf * 0` sets the sign bit) is the one NaN of SQL: above every
-- number in comparisons and sorts, one group with the other NaNs; and a window partitioned by
-- a constant made by `||` (it was a one-row array). Found by tests/difftest.
with v as (
  select (1.0::double / 0.00) * r as x
  from (select 0 as r union all select 0 union all select 1 union all select -1) as t
  union all select 'NaN'::double
)
select x, count(*) as n, max(x) over (partition by 'one ' || 'window') as largest,
  sum(case when 0.5 <= x then 1 else 0 end) over () as above_half
from v
group by x
order by x;
