-- ROLLUP, CUBE and GROUPING SETS with NULL keys (a NULL group and a rolled-up NULL told apart
-- by grouping()), aggregates that see their arguments unchanged in every set (count(grp) in the
-- grand total counts the values of grp), a plain key beside a ROLLUP, and duplicate sets.
select 'rollup' as kind, grp, flag, grouping(grp, flag) as g, count(*) as n, count(grp) as n_grp,
  sum(i16) as total
from edge_types group by rollup (grp, flag)
union all
select 'cube', grp, flag, grouping(grp, flag), count(*), count(grp), sum(i16)
from edge_types group by cube (grp, flag)
union all
select 'sets', grp, null, grouping(grp), count(*), count(grp), sum(i16)
from edge_types group by grouping sets ((grp), (), (grp))
union all
select 'plain and rollup', grp, flag, grouping(flag), count(*), count(grp), sum(i16)
from edge_types where id < 500 group by grp, rollup (flag)
order by 1, 2 nulls first, 3 nulls first, 4, 5;
