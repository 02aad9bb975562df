-- ASC NULLS FIRST on a nullable int, with id as the tiebreaker.
select id, i32, grp
from edge_types
where id < 400
order by i32 asc nulls first, id
limit 60;
