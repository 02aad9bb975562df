-- Correlation by conditions that can hold where the outer value is NULL (OR ... IS NULL,
-- coalesce, IS NOT DISTINCT FROM): the join with the domain of outer values must then match
-- NULL with NULL. Also IS [NOT] DISTINCT FROM as a value.
SELECT a.id,
       a.i32,
       (SELECT count(*) FROM edge_types b WHERE b.i32 < a.i32 OR a.i32 IS NULL) AS smaller_or_all,
       (SELECT count(*) FROM edge_types b
         WHERE b.i16 = a.i16 AND coalesce(b.i32, 0) < coalesce(a.i32, 5)) AS same_i16_smaller,
       (SELECT max(b.id) FROM edge_types b
         WHERE b.grp IS NOT DISTINCT FROM a.grp AND b.id < a.id) AS previous_in_group,
       a.i32 IS DISTINCT FROM a.i16 AS i32_distinct_i16,
       a.s IS NOT DISTINCT FROM a.grp AS s_same_grp
FROM edge_types a
WHERE a.id < 60
ORDER BY a.id;
