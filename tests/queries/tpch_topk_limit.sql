-- Top-k: ORDER BY ... LIMIT with a unique tiebreaker.
select o_orderkey, o_custkey, o_totalprice, o_orderdate
from orders
order by o_totalprice desc, o_orderkey
limit 10;
