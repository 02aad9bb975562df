-- 1 MiB strings: only their lengths and slices are printed.
select id, length(s) as len, substring(s, 1, 10) as head, substring(s, 1048570, 7) as tail,
  s is null as is_null, s = '' as is_empty
from long_strings
order by id;
