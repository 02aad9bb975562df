-- The sorted key: statistics and the page index, no secondary index.
SELECT * FROM lineitem WHERE l_orderkey = 3000002
