-- A point lookup on an unsorted key: about 30 rows (SF10), every column.
SELECT * FROM lineitem WHERE l_partkey = 123457
