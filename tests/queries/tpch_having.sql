-- HAVING on an aggregate that is also selected under an alias.
select l_orderkey, sum(l_quantity) as total_quantity, count(*) as line_count
from lineitem
group by l_orderkey
having sum(l_quantity) > 250 and count(*) >= 6
order by total_quantity desc, l_orderkey;
