-- DESC with the default NULL placement (DuckDB: NULLS LAST for both ASC and DESC) on strings,
-- then explicit NULLS FIRST on a second key.
select id, s, flag
from edge_types
where id % 37 = 0
order by s desc, flag desc nulls first, id
limit 80;
