-- LIMIT with OFFSET over a multi-column sort key.
select l_orderkey, l_linenumber, l_extendedprice, l_shipmode
from lineitem
where l_shipmode <> 'AIR'
order by l_extendedprice, l_orderkey, l_linenumber
limit 10 offset 25;
