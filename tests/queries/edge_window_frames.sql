-- Aggregates over ROWS, RANGE and GROUPS frames: running (the default with ORDER BY), whole
-- partition, sliding, lagging (ending before the current row), leading (starting after it),
-- empty; RANGE offsets over integers, decimals (with a decimal offset), dates (an interval)
-- and a descending key; NULL values and NULL order keys (peers of each other).
select id,
  sum(i32) over (partition by grp order by i8) as run_sum,
  sum(i32) over (partition by grp) as part_sum,
  count(dec) over (partition by grp order by id rows between 2 preceding and 1 following) as cnt_rows,
  sum(dec) over (partition by grp order by id rows between 2 preceding and 1 following) as sum_rows,
  avg(dec) over (partition by grp order by id rows between 3 preceding and 1 preceding) as avg_lag,
  min(s) over (partition by grp order by id rows between 1 following and 3 following) as min_lead,
  max(i16) over (partition by grp order by id rows between 2 following and 1 following) as max_empty,
  sum(i8) over (partition by grp order by cast(i8 as integer) range between 20 preceding and 10 following) as sum_range_int,
  count(*) over (partition by grp order by cast(i8 as integer) desc range between 5 preceding and current row) as cnt_range_desc,
  sum(dec) over (order by dec range between 1000.50 preceding and 1000.50 following) as sum_range_dec,
  count(*) over (order by d range between interval 3650 days preceding and current row) as cnt_range_date,
  count(*) over (order by d nulls first range between current row and interval 3650 days following) as cnt_range_date_nf,
  sum(i8) over (partition by grp order by i8 groups between 1 preceding and 1 following) as sum_groups,
  max(f64) over (partition by grp order by i8, id rows between unbounded preceding and current row) as run_max,
  min(dec) over (partition by grp order by id rows between current row and unbounded following) as min_to_end,
  round(stddev_samp(i16) over (partition by grp order by id rows between 2 preceding and 2 following), 6) as sd_move,
  round(var_pop(dec) over (partition by grp order by id rows between unbounded preceding and current row), 4) as vp_run,
  count(all_null) over (partition by grp) as cnt_null,
  sum(all_null) over (partition by grp order by id) as sum_null
from edge_types
order by id;
