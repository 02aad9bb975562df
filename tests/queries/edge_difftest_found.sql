-- Differences found by the differential tester (tests/difftest), each now as DuckDB answers:
-- round() of decimals and integers exact (it went through DOUBLE), `//`, GROUP BY a decimal
-- constant (not a position), a window over a constant that is NULL (`3 % 0` was an array of
-- one row), CASE that evaluates a branch only on its own rows (a failing cast in a branch no
-- row takes), and UNION of decimals that need more than 38 digits together.
with rounded as (
  select id,
    round(dec, 1) as dec_1,
    round(dec, -1) as dec_tens,
    round(dec_wide - i64, 3) as wide_minus_int,
    round(i64, -2) as i64_hundreds,
    i32 // 7 as i32_div,
    i32 // 0 as by_zero,
    f64 // 2 as f64_div,
    sum(3 % 0) over (partition by grp) as null_window,
    case when abs(i64) < 1000000 then cast(i64 as decimal(9,2)) else -1 end as guarded_cast
  from edge_types
)
select 1.50 as k, count(*) as n, sum(dec_1) as dec_1, sum(dec_tens) as dec_tens,
  sum(wide_minus_int) as wide_minus_int, sum(i64_hundreds) as i64_hundreds,
  sum(i32_div) as i32_div, count(by_zero) as by_zero, sum(f64_div) as f64_div,
  count(null_window) as null_window, sum(guarded_cast) as guarded_cast
from rounded
group by 1.50
union all
select x, 0, x, null, null, null, null, null, null, null, null
from (select round(sum(l_extendedprice), 1) as x from lineitem
      union all select 0.06::decimal(13,2))
order by k, n;
