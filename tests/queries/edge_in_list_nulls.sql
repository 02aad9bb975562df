-- IN / NOT IN with NULL in the list: three-valued logic (true, NULL, never false for a miss).
select id, skew_key, i8,
  skew_key in (7, null) as in_with_null,
  skew_key not in (1, 2, null) as not_in_with_null,
  i8 in (0, -1, 127) as i8_in,
  i8 not in (0, -1, 127) as i8_not_in
from edge_types
where id < 40
order by id;
