-- DISTINCT aggregates beside ordinary ones, grouped by a key with NULLs: sum, avg and count
-- of DISTINCT values (NULLs ignored), with count(*), count(x), sum, avg, min and max of every
-- row, and min/max(DISTINCT), which DISTINCT does not change.
select grp,
       count(distinct i32) as distinct_ints,
       sum(distinct i32) as distinct_int_sum,
       avg(distinct i32) as distinct_int_avg,
       sum(distinct dec) as distinct_dec_sum,
       count(*) as n,
       count(s) as strings,
       sum(i16) as total,
       avg(i32) as mean,
       min(s) as lowest,
       max(distinct d) as latest,
       count(distinct s) as distinct_strings
from edge_types
group by grp
order by grp nulls first;
