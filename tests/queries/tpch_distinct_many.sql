-- SELECT DISTINCT producing thousands of rows (unordered).
select distinct o_custkey, o_orderpriority
from orders
where o_orderstatus = 'F';
