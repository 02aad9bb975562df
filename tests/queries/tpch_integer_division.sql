-- NOTE: DuckDB's '/' on two integers returns DOUBLE (7 / 2 = 3.5); ooc follows DuckDB.
-- Use '//' for integer division (not used here).
select l_orderkey, l_linenumber, l_orderkey / l_linenumber as ratio, l_orderkey % 7 as remainder
from lineitem
where l_orderkey <= 40
order by l_orderkey, l_linenumber;
