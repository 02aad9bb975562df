-- Tiny tables, string predicates, NOT and OR.
select n_nationkey, n_name, n_regionkey, length(n_comment) as comment_length
from nation
where not (n_regionkey = 0 or n_name like 'I%') or n_nationkey = 8
order by n_regionkey, n_name;
