-- IN / NOT IN lists and BETWEEN on integers, decimals and dates.
select l_shipmode, l_linenumber, count(*) as line_count, sum(l_quantity) as quantity
from lineitem
where l_shipmode in ('MAIL', 'SHIP', 'TRUCK')
  and l_linenumber not in (1, 2)
  and l_quantity between 10 and 20
  and l_discount between 0.02 and 0.05
  and l_shipdate between date '1995-01-01' and date '1996-12-31'
group by l_shipmode, l_linenumber
order by l_shipmode, l_linenumber;
