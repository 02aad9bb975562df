-- INTERSECT and EXCEPT: distinct rows, NULLs equal each other (NULL groups and NULL flags
-- meet across the inputs), INTERSECT binds tighter than UNION and EXCEPT, and a following
-- UNION ALL keeps the set operation's rows as they are.
select grp, flag from edge_types where id % 2 = 0
intersect
select grp, flag from edge_types where id % 3 = 0 and (grp < 'f' or grp is null)
except
select grp, flag from edge_types where grp = 'beta' and flag
union all
select s, flag from edge_types where id < 3
order by 1 nulls first, 2 nulls first;
