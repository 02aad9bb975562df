-- What ooc evaluates (found by tests/difftest): the conjuncts of a filter that failed as a
-- whole are evaluated one after another on the rows still passing (the product overflows
-- only on rows the range check rejects); a filter that folds to FALSE does not run its input
-- (whose cast would fail); a sort by a constant of rows without columns keeps its rows.
select
  (select count(*) from edge_types
    where i64 between -1000000 and 1000000 and i64 * 1000000000000 >= 0) as lazy_and,
  (select count(*) from (select avg(cast(i64 as decimal(5, 2))) as a from edge_types) as x
    where 1 = 0) as never_run,
  (select max(n) from (select row_number() over (order by 1) as n
    from (select 1 as one from edge_types where id < 100) as y) as z) as zero_columns;
