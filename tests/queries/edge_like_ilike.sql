-- LIKE / ILIKE / NOT LIKE over unicode and NULL strings, counted per group.
select grp,
  sum(case when s like '%an%' then 1 else 0 end) as like_an,
  sum(case when s ilike '%BAN%' then 1 else 0 end) as ilike_ban,
  sum(case when s ilike 'école' then 1 else 0 end) as ilike_ecole,
  sum(case when s not like '%e%' then 1 else 0 end) as not_like_e,
  sum(case when s like '_ig%' then 1 else 0 end) as like_underscore,
  count(s) as non_null
from edge_types
group by grp
order by grp nulls last;
