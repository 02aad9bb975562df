-- Global DISTINCT aggregates beside ordinary ones, over the table and over an empty input
-- (where counts are 0 and the other aggregates NULL): one distinct argument with
-- decomposable companions (two group-bys), then two distinct arguments and an average (one
-- input copy per argument).
select count(distinct i64 % 7) as residues,
       sum(distinct i64 % 7) as residue_sum,
       count(*) as n,
       count(all_null) as nothing,
       sum(i32) as total,
       null as mean,
       min(d) as first_day,
       max(s) as last_string
from edge_types
union all
select count(distinct i64 % 7), sum(distinct i64 % 7), count(*), count(all_null), sum(i32),
       null, min(d), max(s)
from edge_types
where i32 > 1000000000 and i32 < -1000000000
union all
select count(distinct grp), sum(distinct i16), count(*), count(all_null), sum(i32),
       avg(dec), min(d), max(s)
from edge_types
union all
select count(distinct grp), sum(distinct i16), count(*), count(all_null), sum(i32),
       avg(dec), min(d), max(s)
from edge_types
where i32 > 1000000000 and i32 < -1000000000;
