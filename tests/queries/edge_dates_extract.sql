-- EXTRACT on year-1 / epoch / leap-day / random dates and timestamps; date + interval cast to DATE
-- (9999-12-31 is excluded: + 1 day would overflow the DATE range; '- 1 month' from year 1 would
-- give a BC date, which DuckDB prints as '0001-12-01 (BC)').
select id, d, extract(year from d) as d_year, extract(month from d) as d_month, extract(day from d) as d_day,
  ts, extract(year from ts) as ts_year, extract(month from ts) as ts_month,
  cast(d + interval '1' day as date) as next_day, cast(d + interval '1' month as date) as month_after
from edge_types
where (id % 2500 < 5 or id % 97 = 0) and d < date '9999-01-01' and id < 3000
order by id;
