-- count(DISTINCT) of several different arguments in one aggregate, grouped by a key with
-- NULLs (NULL values are not counted; the NULL group is a group), and the same argument twice.
select grp,
       count(distinct flag) as flags,
       count(distinct i32) as ints,
       count(distinct s) as strings,
       count(distinct all_null) as nothing,
       count(distinct flag) as flags_again
from edge_types
group by grp
order by grp nulls first;
