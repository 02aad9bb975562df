-- TPC-H Q1's aggregate over a gzip CSV written by DuckDB, with exact decimal types given.
SELECT l_returnflag, l_linestatus,
       sum(l_quantity) AS sum_qty,
       sum(l_extendedprice) AS sum_base_price,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       avg(l_quantity) AS avg_qty,
       count(*) AS count_order,
       min(l_shipdate) AS first_ship,
       count(DISTINCT l_comment) AS comments
FROM read_csv('tests/fixtures/text/lineitem.csv.gz',
              types = {'l_quantity': 'DECIMAL(15,2)', 'l_extendedprice': 'DECIMAL(15,2)',
                       'l_discount': 'DECIMAL(15,2)', 'l_tax': 'DECIMAL(15,2)'})
WHERE l_shipdate <= DATE '1998-09-02'
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus;
