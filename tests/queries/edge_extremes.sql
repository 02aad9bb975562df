-- min/max of strings (byte order), dates and timestamps at year 1 and year 9999.
select min(s) as s_min, max(s) as s_max, min(s_large) as s_large_min, max(s_large) as s_large_max,
  min(s_view) as s_view_min, max(s_view) as s_view_max, count(distinct s) as s_distinct,
  min(d) as d_min, max(d) as d_max, min(ts) as ts_min, max(ts) as ts_max,
  count(d) as d_count, count(ts) as ts_count
from edge_types;
