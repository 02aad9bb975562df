-- An all-NULL column, and a row group (ids 6000..7999) where i32 is entirely NULL:
-- count → 0, sum/min/max/avg → NULL.
select count(*) as row_count, count(all_null) as all_null_count, sum(all_null) as all_null_sum,
  min(all_null) as all_null_min, max(all_null) as all_null_max, avg(all_null) as all_null_avg,
  count(i32) as i32_count, sum(i32) as i32_sum, min(i32) as i32_min
from edge_types
where id between 6000 and 7999;
