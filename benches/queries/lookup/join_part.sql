-- A join whose build side holds a few hundred part keys: an index of l_partkey serves the
-- probe scan with the build's keys.
SELECT count(*), sum(l_quantity) FROM lineitem JOIN part ON l_partkey = p_partkey
WHERE p_size = 15 AND p_type = 'ECONOMY PLATED TIN'
