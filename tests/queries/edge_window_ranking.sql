-- Ranking functions with NULL partition and order keys, ties, one-row partitions and
-- descending NULLS FIRST ordering; a window without PARTITION BY; ntile with more buckets
-- than rows.
select id, grp, i8,
  row_number() over (partition by grp order by i8, id) as rn,
  rank() over (partition by grp order by i8) as rk,
  dense_rank() over (partition by grp order by i8) as drk,
  round(percent_rank() over (partition by grp order by i8), 6) as pr,
  round(cume_dist() over (partition by grp order by i8), 6) as cd,
  ntile(3) over (partition by grp order by i8, id) as nt3,
  ntile(50) over (partition by grp order by i8, id) as nt50,
  rank() over (order by skew_key desc nulls first) as rk_all,
  dense_rank() over (partition by skew_key order by d desc nulls first) as drk_d,
  count(*) over (partition by grp) as n_grp,
  count(*) over () as n_all
from edge_types
order by id;
