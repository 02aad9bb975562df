-- Global count(DISTINCT) of several different arguments, one of them an expression.
select count(distinct grp) as groups,
       count(distinct d) as days,
       count(distinct i64 % 7) as residues,
       count(distinct all_null) as nothing
from edge_types;
