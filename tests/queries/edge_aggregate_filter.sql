-- FILTER (WHERE ...) on aggregates: count(*), count, sum, avg, min, max, stddev and
-- count(DISTINCT ...), with a condition that is NULL for some rows (NULL filters the row out),
-- grouped, in HAVING, and a group where the filter keeps nothing.
select grp,
  count(*) filter (where flag) as n_flag,
  count(dec) filter (where i8 > 0) as n_dec_pos,
  sum(i16) filter (where flag is not true) as sum_not_flag,
  avg(f64) filter (where i32 % 2 = 0) as avg_even,
  min(s) filter (where flag) as min_s_flag,
  max(d) filter (where id > 100000) as max_d_none,
  round(stddev_samp(i16) filter (where flag), 6) as sd_flag,
  count(distinct skew_key) filter (where id % 3 = 0) as distinct_third
from edge_types
group by grp
having count(*) filter (where flag) >= 0
order by grp nulls first;
