SELECT t.a, count(*), sum(u.d) FROM t JOIN u ON t.a = u.a WHERE t.b LIKE 's%' GROUP BY t.a HAVING count(*) > 1 ORDER BY 1 DESC LIMIT 5
