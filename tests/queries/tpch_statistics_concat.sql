-- Sample and population variance and standard deviation (grouped, global with DISTINCT, one
-- row per group gives NULL for the sample forms), and concat (NULL as the empty string, any
-- type as text).
select l_returnflag,
  round(stddev_samp(l_quantity), 6) as sd,
  round(stddev_pop(l_extendedprice), 4) as sdp,
  round(var_samp(l_discount), 9) as vs,
  round(variance(l_tax), 9) as v,
  round(var_pop(l_quantity), 6) as vp,
  concat(l_returnflag, '-', count(*), '-', NULL, max(l_shipdate)) as label
from lineitem
group by l_returnflag
order by l_returnflag;
