-- date_trunc, date_diff and date_part on TIMESTAMP: time-of-day parts (hour ... millisecond)
-- on microseconds, calendar parts on the date (DATE results), at the edges of the range
-- (years 1 and 9999), before 1970, and with NULLs; DATE arguments with time-of-day parts.
select id, ts, date_trunc('hour', ts) h, date_trunc('minute', ts) mi, date_trunc('second', ts) s, date_trunc('millisecond', ts) ms,
  date_trunc('month', ts) mo, date_trunc('week', ts) w, date_trunc('day', ts) d, date_trunc('year', ts) y, date_trunc('hour', d) dh,
  date_diff('hour', ts, timestamp '2000-01-01 00:00:00') dh2, date_diff('minute', timestamp '1969-12-31 23:59:30', ts) dmi,
  date_diff('second', ts, ts + interval 1 day) ds, date_diff('day', ts, timestamp '2000-01-01 00:30:00') dd, date_diff('month', ts, timestamp '2000-01-01 00:30:00') dmo,
  date_diff('millisecond', ts, timestamp '2000-01-01 00:00:00.5') dms, date_diff('hour', d, ts) dhd,
  date_part('millisecond', ts) pms, date_part('microsecond', ts) pus, datediff('week', ts, d) dw
from edge_types where id < 200 order by id
;
