-- Float aggregates once the special values are filtered out (values are k/1024, so sums are exact).
select grp, count(f64) as f64_count, sum(f64) as f64_sum, avg(f64) as f64_avg,
  min(f64) as f64_min, max(f64) as f64_max, sum(f32) as f32_sum, avg(f32) as f32_avg
from edge_types
where f64 between -1e12 and 1e12 and f64 <> 0
group by grp
order by grp nulls first;
