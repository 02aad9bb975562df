-- Four grouping keys, one of them an expression.
select l_returnflag, l_linestatus, l_shipmode, extract(year from l_shipdate) as ship_year,
  count(*) as line_count, sum(l_extendedprice) as revenue, avg(l_discount) as avg_discount
from lineitem
group by l_returnflag, l_linestatus, l_shipmode, extract(year from l_shipdate)
order by l_returnflag, l_linestatus, l_shipmode, ship_year;
