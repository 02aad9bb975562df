-- CASE, CAST between types, COALESCE over several nullable columns.
select id,
  coalesce(s, 'missing') as s_or_missing,
  coalesce(i32, i16, -999) as first_int,
  cast(i16 as double) as i16_double,
  cast(dec as bigint) as dec_bigint,
  cast(d as varchar) as d_text,
  cast(i8 as varchar) as i8_text,
  case when f32 > 0 then 'positive' when f32 < 0 then 'negative' when f32 = 0 then 'zero' else 'null' end as f32_sign,
  case grp when 'alpha' then 1 when 'beta' then 2 else 0 end as grp_code
from edge_types
where id < 50
order by id;
