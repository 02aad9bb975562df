-- A key of about 600 rows (SF10) in every row group.
SELECT * FROM lineitem WHERE l_suppkey = 4242
