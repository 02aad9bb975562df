-- date ± INTERVAL 'n' day|month|year, including month-end clamping; results cast to DATE.
select o_orderkey, o_orderdate,
  cast(o_orderdate + interval '10' day as date) as plus_10_days,
  cast(o_orderdate - interval '45' day as date) as minus_45_days,
  cast(o_orderdate + interval '1' month as date) as plus_1_month,
  cast(o_orderdate + interval '2' year as date) as plus_2_years
from orders
where o_orderkey <= 100 or extract(day from o_orderdate) = 31
order by o_orderkey
limit 60;
