-- Ordering of NaN, ±inf, tiny and huge doubles (DuckDB puts NaN above +inf; NULLS LAST).
-- Zeros are excluded: DuckDB treats -0.0 = 0.0 and does not keep the sign in sorted output.
select id, f64
from edge_types
where id % 2500 < 16 and (f64 <> 0 or f64 is null)
order by f64, id;
