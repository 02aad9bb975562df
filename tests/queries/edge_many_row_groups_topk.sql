-- Top-k with OFFSET over many tiny row groups; v is NULL for id % 10 = 3.
select id, v, k
from many_row_groups
where v > 2000 or v is null
order by v desc nulls first, id
limit 10 offset 495;
