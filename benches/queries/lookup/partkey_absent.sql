-- A key no row holds.
SELECT * FROM lineitem WHERE l_partkey = 2000001
