-- The function library against DuckDB: math (floor and ceil exact on decimals, sqrt, ln,
-- log10, exp, power, sign), greatest/least skipping NULLs, nullif, strings (replace, reverse,
-- left/right with negative counts, strpos/position, lpad/rpad, split_part with negative
-- indexes, concat_ws skipping NULLs) and dates (date_trunc, date_diff, make_date, last_day),
-- each over NULLs.
select id,
  floor(dec) as floor_dec, ceil(dec) as ceil_dec, floor(f64) as floor_f, ceil(i8) as ceil_i,
  round(sqrt(abs(f64)), 6) as sqrt_f, round(ln(abs(cast(i32 as bigint)) + 1), 6) as ln_i,
  round(log10(abs(dec) + 1), 6) as log_dec, round(exp(i8 / 100.0), 6) as exp_i,
  round(power(i16 % 7, 3), 6) as pow_i, sign(i16) as sign_i, sign(f64) as sign_f,
  greatest(i8, i16, null) as greatest_i, least(dec, 0, dec_wide) as least_dec,
  nullif(grp, 'alpha') as nullif_grp,
  replace(s, 'a', '<A>') as replace_s, reverse(s) as reverse_s,
  left(s, 3) as left_s, right(s, -2) as right_s, left(s, -1) as left_neg,
  strpos(s, 'e') as strpos_s, position('a' in grp) as position_grp,
  lpad(grp, 7, '.-') as lpad_grp, rpad(grp, 3, '*') as rpad_grp,
  split_part(s, ' ', 2) as split_2, split_part(s, ' ', -1) as split_last,
  concat_ws('|', grp, s, null, cast(i8 as varchar)) as ws,
  date_trunc('month', d) as trunc_month, date_trunc('quarter', d) as trunc_quarter,
  date_trunc('year', d) as trunc_year, date_trunc('week', d) as trunc_week,
  date_diff('day', date '2000-01-01', d) as diff_days,
  date_diff('month', date '2000-01-31', d) as diff_months,
  date_diff('year', d, date '2030-06-15') as diff_years,
  last_day(d) as last_day_d,
  make_date(2000 + abs(i32 % 30), 1 + abs(i16 % 12), 1 + abs(id % 28)) as made
from edge_types
where id < 300
order by id;
