-- String functions on ASCII data: upper, lower, length, substring, trim, starts_with.
select p_partkey, upper(p_name) as name_upper, lower(p_brand) as brand_lower,
  length(p_name) as name_length, substring(p_type, 1, 5) as type_prefix,
  substring(p_type, 7, 4) as type_middle, trim(' ' || p_container || ' ') as container,
  starts_with(p_name, 'a') as starts_with_a
from part
where p_partkey <= 30
order by p_partkey;
