-- Two columns of the rows of an unsorted key.
SELECT l_orderkey, l_quantity FROM lineitem WHERE l_partkey = 123457
