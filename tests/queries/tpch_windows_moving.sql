-- Per-supplier moving average and running sum over ship dates (a sliding ROWS frame and a
-- RANGE frame over dates), lag of the previous shipment, top shipments per supplier with
-- QUALIFY.
select l_suppkey, l_shipdate, l_orderkey, l_linenumber,
  round(avg(l_extendedprice) over (partition by l_suppkey order by l_shipdate, l_orderkey, l_linenumber rows between 6 preceding and current row), 4) as moving_avg,
  sum(l_quantity) over (partition by l_suppkey order by l_shipdate range between interval 30 days preceding and current row) as qty_30d,
  lag(l_shipdate) over (partition by l_suppkey order by l_shipdate, l_orderkey, l_linenumber) as previous_ship
from lineitem
where l_suppkey <= 5
qualify row_number() over (partition by l_suppkey order by l_extendedprice desc, l_orderkey, l_linenumber) <= 4
order by l_suppkey, l_shipdate, l_orderkey, l_linenumber;
