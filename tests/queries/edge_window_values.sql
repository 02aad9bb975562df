-- lag and lead (offsets, defaults, past the partition's ends), IGNORE NULLS, and the value
-- functions over frames: first_value, last_value, nth_value, with and without IGNORE NULLS,
-- over running, sliding and whole-partition frames.
select id,
  lag(dec) over w as lag1,
  lag(dec, 2, 0) over w as lag2,
  lead(s, 1) over w as lead1,
  lead(i32, 3, -1) over w as lead3,
  lag(i8, 0) over w as lag0,
  lag(dec ignore nulls) over w as lag_nn,
  lead(dec, 2 ignore nulls) over w as lead2_nn,
  first_value(dec) over w as fv_run,
  last_value(dec) over w as lv_run,
  last_value(dec) over (w rows between unbounded preceding and unbounded following) as lv_all,
  nth_value(s, 2) over w as nth2,
  nth_value(s, 3) over (w rows between 1 preceding and 3 following) as nth3_move,
  first_value(dec ignore nulls) over (w rows between 1 preceding and 2 following) as fv_nn_move,
  last_value(dec ignore nulls) over w as lv_nn_run,
  nth_value(dec, 2 ignore nulls) over w as nth2_nn,
  first_value(d) over (partition by grp order by d desc nulls first) as fv_d
from edge_types
window w as (partition by grp order by id)
order by id;
