-- Variance over groups of one row (sample forms NULL, population forms 0), NULL values,
-- DISTINCT, and values far from zero (where summing squares would lose the variance).
select case when id < 3 then 'row ' || cast(id as varchar) else grp end as g,
  count(dec) as n,
  stddev_samp(dec) is null as sd_null,
  var_samp(dec) is null as vs_null,
  round(var_pop(dec), 4) as vp,
  round(stddev_pop(dec), 4) as sdp,
  round(stddev_samp(distinct skew_key), 4) as sd_distinct,
  round(var_samp(dec + 1000000000), 2) as shifted
from edge_types
group by 1
order by 1 nulls first;
