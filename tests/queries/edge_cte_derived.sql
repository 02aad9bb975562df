-- A CTE feeding a derived table; ratio computed as DOUBLE.
with per_group as (
  select grp, count(*) as row_count, sum(case when flag then 1 else 0 end) as flagged
  from edge_types
  group by grp
)
select grp, row_count, flagged, share
from (
  select grp, row_count, flagged, cast(flagged as double) / row_count as share
  from per_group
  where grp is not null
) as shares
order by share desc, grp;
