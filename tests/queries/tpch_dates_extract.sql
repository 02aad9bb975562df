-- EXTRACT(year/month/day) and a date range built with date + INTERVAL (cast back to DATE:
-- DuckDB's date + interval is a TIMESTAMP).
select extract(year from o_orderdate) as order_year, extract(month from o_orderdate) as order_month,
  count(*) as order_count, min(extract(day from o_orderdate)) as first_day,
  max(extract(day from o_orderdate)) as last_day
from orders
where o_orderdate >= date '1995-01-01'
  and o_orderdate < cast(date '1995-01-01' + interval '18' month as date)
group by 1, 2
order by order_year, order_month;
