-- Filters over 5,000 one-row row groups (min/max pruning per row group).
select count(*) as row_count, count(v) as v_count, sum(v) as v_sum, min(id) as id_min, max(id) as id_max
from many_row_groups
where id between 1200 and 3456 and k in ('k01', 'k05', 'k16');
