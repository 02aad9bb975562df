-- A query over an empty file returns only the header.
select id, s, d
from empty
where id > 0
order by id;
