-- Aggregates over every numeric type of edge_types. f64 contains NaN, ±inf and ±1e300, so its
-- sum and avg are NaN and max is NaN (DuckDB orders NaN above +inf). i64 holds ±(2^63 - 2):
-- only min/max/count are taken over it.
select count(*) as row_count,
  count(i8) as i8_count, sum(i8) as i8_sum, min(i8) as i8_min, max(i8) as i8_max,
  sum(i16) as i16_sum, avg(i16) as i16_avg, min(i16) as i16_min, max(i16) as i16_max,
  count(i32) as i32_count, sum(i32) as i32_sum, min(i32) as i32_min, max(i32) as i32_max,
  count(i64) as i64_count, min(i64) as i64_min, max(i64) as i64_max,
  sum(f32) as f32_sum, min(f32) as f32_min, max(f32) as f32_max,
  count(f64) as f64_count, sum(f64) as f64_sum, min(f64) as f64_min, max(f64) as f64_max,
  sum(dec) as dec_sum, min(dec) as dec_min, max(dec) as dec_max, avg(dec) as dec_avg,
  sum(dec_wide) as dec_wide_sum, min(dec_wide) as dec_wide_min, max(dec_wide) as dec_wide_max,
  count(flag) as flag_count, sum(case when flag then 1 else 0 end) as flag_true
from edge_types;
