-- SELECT DISTINCT over two low-cardinality columns.
select distinct l_returnflag, l_linestatus
from lineitem
order by l_returnflag, l_linestatus;
