-- Group by a high-cardinality key: one group per order (~15k groups at SF0.01). Unordered.
select l_orderkey, count(*) as line_count, sum(l_quantity) as total_quantity,
  max(l_extendedprice) as max_price, min(l_shipdate) as first_ship
from lineitem
group by l_orderkey;
