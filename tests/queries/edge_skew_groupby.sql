-- ~90% of rows share skew_key = 7; the rest spread over ~1000 keys (unordered).
select skew_key, count(*) as row_count, sum(i16) as i16_sum, max(id) as max_id
from edge_types
group by skew_key;
