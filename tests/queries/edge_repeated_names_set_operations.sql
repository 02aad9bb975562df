-- Set operations and ORDER BY over inputs whose output names repeat.
SELECT n_regionkey, n_regionkey FROM nation WHERE n_regionkey < 2
UNION SELECT 7, 8
UNION ALL SELECT 9, 9
EXCEPT SELECT 1, 1
ORDER BY 1 DESC, 2;
