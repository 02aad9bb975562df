-- Uncorrelated scalar subqueries in the select list: alone, in CASE and in function arguments,
-- beside an aggregation (their values are joined in after it) and without one.
select n_regionkey, count(*) as nations,
  (select count(*) from region) as regions,
  case when count(*) > (select count(*) / 5 from nation) then 'big' else 'small' end as size,
  coalesce((select max(r_name) from region where r_regionkey > 10), 'none') as missing,
  count(*) * 100.0 / (select count(*) from nation) as share
from nation
group by n_regionkey
union all
select r_regionkey, 0 as n, (select count(*) from region where r_regionkey < 2), r_name, NULL, 0.0 as s
from region where r_regionkey = 4
order by 1, 2;
