-- Correlated scalar subqueries in the select list: a count (0, not NULL, for customers
-- without orders), a max, and an expression over two of them; decorrelated into joins with
-- the subqueries grouped by their correlation keys.
select c_custkey,
  (select count(*) from orders where o_custkey = c_custkey) as orders,
  (select max(o_totalprice) from orders where o_custkey = c_custkey and o_orderstatus = 'F') as top_f,
  (select count(*) from orders where o_custkey = c_custkey and o_orderpriority = '1-URGENT')
    + (select count(*) from nation where n_nationkey = c_nationkey) as mixed
from customer
where c_custkey <= 40
order by c_custkey;
