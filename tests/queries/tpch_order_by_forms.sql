-- ORDER BY an expression, an alias and an ordinal together.
select c_custkey, c_mktsegment as segment, c_acctbal
from customer
where c_nationkey in (1, 3, 5)
order by segment desc, c_acctbal * -1, 1
limit 25;
