-- String functions on unicode and padded strings. 'ß' is excluded from upper(): DuckDB maps
-- it to 'ẞ' (U+1E9E), which is not what most engines do.
select id, s, length(s) as len, upper(s) as upper_s, lower(s) as lower_s, trim(s) as trimmed,
  substring(s, 2, 3) as middle, starts_with(s, 'a') as starts_a, length(s_view) as view_len,
  lower(s_large) as lower_large
from edge_types
where id < 60 and s not like '%ß%' and s_large not like '%ß%'
order by id;
