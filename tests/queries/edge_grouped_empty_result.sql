-- GROUP BY over a filter that keeps nothing: zero groups (not one NULL row).
select grp, count(*) as row_count
from edge_types
where id < 0
group by grp;
