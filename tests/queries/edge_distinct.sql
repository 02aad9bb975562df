-- DISTINCT with NULLs in both keys (NULL is one distinct value).
select distinct grp, flag
from edge_types
order by grp nulls first, flag nulls first;
