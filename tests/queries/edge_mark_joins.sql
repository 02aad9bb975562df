-- EXISTS and IN subqueries inside expressions (under OR, NOT, IS NULL, comparisons) are mark
-- joins with SQL's three-valued IN: NULL for a NULL probe or NULL among the values, FALSE for
-- an empty subquery; EXISTS correlated by equalities, and uncorrelated.
select
  (select count(*) from edge_types
   where skew_key in (select skew_key from edge_types where id < 50) or grp = 'alpha') as in_or,
  (select count(*) from edge_types
   where (skew_key in (select all_null from edge_types where id < 3)) is null) as null_values,
  (select count(*) from edge_types
   where (skew_key in (select skew_key from edge_types where id < 0)) = false) as empty_values,
  (select count(*) from edge_types
   where (skew_key in (select skew_key from edge_types where id < 50)) is null) as null_probe,
  (select count(*) from edge_types
   where not (skew_key in (select skew_key from edge_types where id < 3) or id < 5)) as not_in_or,
  (select count(*) from edge_types e1
   where exists (select 1 from edge_types e2 where e2.skew_key = e1.skew_key and e2.id > 19000)
      or e1.flag) as exists_or,
  (select count(*) from edge_types e1
   where not (exists (select 1 from edge_types e2 where e2.grp = e1.grp and e2.id < 30)
      or e1.id > 10000)) as not_exists_or,
  (select count(*) from edge_types
   where exists (select 1 from edge_types where id < 0) or id < 5) as uncorrelated_exists_or;
