-- Grouping by an all-NULL column gives one NULL group.
select all_null, count(*) as row_count, count(i8) as i8_count
from edge_types
group by all_null;
