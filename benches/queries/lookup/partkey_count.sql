-- How many rows hold an unsorted key.
SELECT count(*) FROM lineitem WHERE l_partkey = 123457
