-- As filters: NOT IN with a NULL in the list keeps no rows; IN with NULL keeps the matches.
select count(*) as row_count,
  sum(case when skew_key in (7, null) then 1 else 0 end) as in_with_null,
  sum(case when skew_key not in (7, null) then 1 else 0 end) as not_in_with_null,
  sum(case when skew_key not in (7) then 1 else 0 end) as not_in_plain,
  sum(case when skew_key is null then 1 else 0 end) as null_keys,
  sum(case when grp is not null and skew_key between 100 and 200 then 1 else 0 end) as between_keys
from edge_types;
