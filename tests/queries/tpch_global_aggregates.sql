-- Aggregates without GROUP BY: exactly one row.
select count(*) as line_count, count(distinct l_suppkey) as suppliers,
  count(distinct l_orderkey) as orders, sum(l_quantity) as total_quantity,
  avg(l_extendedprice) as avg_price, min(l_shipdate) as first_ship, max(l_receiptdate) as last_receipt,
  min(l_comment) as min_comment, max(l_shipinstruct) as max_instruct
from lineitem;
