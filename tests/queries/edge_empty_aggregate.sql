-- Aggregates over a file with zero rows: one row, count = 0, the rest NULL.
select count(*) as row_count, count(id) as id_count, min(id) as id_min, max(d) as d_max, sum(id) as id_sum
from empty;
