-- INTERSECT ALL and EXCEPT ALL keep duplicates: a row m times on the left and n times on the
-- right comes min(m, n) times (INTERSECT ALL) or max(m - n, 0) times (EXCEPT ALL); NULLs
-- equal each other. Counted per (grp, flag) over rows with many duplicates.
select kind, grp, flag, count(*) as copies from (
  select 'intersect all' as kind, * from (
    select grp, flag from edge_types where id % 2 = 0
    intersect all
    select grp, flag from edge_types where id % 3 = 0
  )
  union all
  select 'except all', * from (
    select grp, flag from edge_types where id % 2 = 0
    except all
    select grp, flag from edge_types where id % 3 = 0
  )
  union all
  select 'except all, reversed', * from (
    select grp, flag from edge_types where id % 3 = 0
    except all
    select grp, flag from edge_types where id % 2 = 0
  )
)
group by all
order by 1, 2 nulls first, 3 nulls first;
