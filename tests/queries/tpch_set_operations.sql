-- INTERSECT / EXCEPT between tables, with types unified across inputs (INTEGER and BIGINT keys,
-- a literal string beside a column).
select c_nationkey as nation, c_mktsegment as segment from customer
except
select s_nationkey, 'BUILDING' from supplier
intersect
select n_nationkey, 'BUILDING' from nation where n_regionkey < 3
order by nation, segment;
