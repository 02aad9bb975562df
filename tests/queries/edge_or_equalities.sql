-- OR chains of equalities with one expression (rewritten into IN lists): integers with a NULL
-- constant, strings on either side of '=', and chains that must stay ORs (two expressions,
-- a non-equality).
select id,
  skew_key = 7 or skew_key = 48 or skew_key = 159 or skew_key = null as ints_null,
  s = 'école' or 'straße' = s or s = '' or s = 'x' as strings,
  skew_key = 7 or i32 = 0 or skew_key = 48 as two_subjects,
  skew_key = 7 or skew_key > 700 or skew_key = 48 as mixed
from edge_types
where id < 300 and (skew_key = 71 or skew_key = 349 or skew_key = 7 or skew_key = 116)
order by id;
