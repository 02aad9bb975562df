-- strftime over dates and timestamps, strptime (with and without a time of day) and
-- try_strptime's NULL for text that does not match.
SELECT strftime(o_orderdate, '%Y-%m') AS month,
       strftime(o_orderdate, '%d.%m.%y %a') AS dotted,
       count(*) AS n,
       min(strptime(strftime(o_orderdate, '%d/%m/%Y') || ' 12:30:00', '%d/%m/%Y %H:%M:%S')) AS noon,
       max(try_strptime(o_clerk, 'Clerk#%Y')) IS NULL AS none,
       count(try_strptime(o_comment, '%Y-%m-%d')) AS parsed
FROM orders
WHERE o_orderdate < DATE '1992-04-01'
GROUP BY 1, 2
ORDER BY 1, 2
LIMIT 20;
