-- bool_and / bool_or skip NULLs; a group of only NULLs gives NULL; with FILTER.
select grp,
  bool_and(flag) as all_flag, bool_or(flag) as any_flag, bool_and(i8 > -100) as all_big,
  bool_and(flag) filter (where id % 2 = 0) as all_even,
  bool_or(all_null is not null) as any_all_null, bool_and(case when id < 0 then true end) as none
from edge_types
group by grp
order by grp nulls first;
