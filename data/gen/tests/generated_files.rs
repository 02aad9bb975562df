//! End-to-end checks of the generators: row counts, row-group bounds, readable edge files.

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int32Type, Int64Type};
use ooc_datagen::{
    generate_edge, generate_tpch, generate_tpch_with_options, TpchOptions, TpchTable,
    EDGE_TYPES_ROWS, EDGE_TYPES_ROW_GROUP_ROWS, MANY_ROW_GROUPS_COUNT,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;

fn metadata(path: &Path) -> ParquetMetaData {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .metadata()
        .as_ref()
        .clone()
}

fn read_all(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).unwrap();
    // Batches of one edge_types row group each, so batch i is row group i there.
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(EDGE_TYPES_ROW_GROUP_ROWS)
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn tpch_sf_0_01_has_the_specified_row_counts_and_bounded_row_groups() {
    let out = tempfile::tempdir().unwrap();
    let written = generate_tpch(out.path(), 0.01, 10_000).unwrap();
    assert_eq!(written.len(), 8);
    let expected = [
        ("lineitem", 60_175),
        ("orders", 15_000),
        ("customer", 1_500),
        ("part", 2_000),
        ("partsupp", 8_000),
        ("supplier", 100),
        ("nation", 25),
        ("region", 5),
    ];
    for (name, rows) in expected {
        let path = out.path().join(format!("{name}.parquet"));
        let metadata = metadata(&path);
        assert_eq!(metadata.file_metadata().num_rows(), rows, "{name}");
        for row_group in metadata.row_groups() {
            assert!(row_group.num_rows() <= 10_000, "{name} row group too big");
        }
        assert_eq!(
            metadata.num_row_groups(),
            (rows as usize).div_ceil(10_000),
            "{name}"
        );
        assert!(!out.path().join(format!("{name}.parquet.tmp")).exists());
    }
    let lineitem = read_all(&out.path().join("lineitem.parquet"));
    let schema = lineitem[0].schema();
    assert_eq!(
        schema
            .field_with_name("l_extendedprice")
            .unwrap()
            .data_type(),
        &DataType::Decimal128(15, 2)
    );
    assert_eq!(
        schema.field_with_name("l_shipdate").unwrap().data_type(),
        &DataType::Date32
    );
    assert_eq!(
        schema.field_with_name("l_comment").unwrap().data_type(),
        &DataType::Utf8View
    );

    // Existing files are skipped unless forced.
    let again = generate_tpch(out.path(), 0.01, 10_000).unwrap();
    assert!(again.iter().all(|file| file.skipped));
    let forced = generate_tpch_with_options(
        out.path(),
        &TpchOptions::new(0.01)
            .with_row_group_rows(10_000)
            .with_force(true)
            .with_tables(vec![TpchTable::Nation]),
    )
    .unwrap();
    assert_eq!(forced.len(), 1);
    assert!(!forced[0].skipped);
    assert_eq!(forced[0].rows, 25);
}

#[test]
fn bloom_filters_are_written_for_the_columns_asked() {
    let out = tempfile::tempdir().unwrap();
    let options = TpchOptions::new(0.01)
        .with_row_group_rows(10_000)
        .with_tables(vec![TpchTable::Orders, TpchTable::Nation])
        .with_bloom_filter_columns(vec!["o_custkey".into(), "n_name".into()]);
    generate_tpch_with_options(out.path(), &options).unwrap();
    for (table, column) in [("orders", "o_custkey"), ("nation", "n_name")] {
        let meta = metadata(&out.path().join(format!("{table}.parquet")));
        for rg in meta.row_groups() {
            for c in rg.columns() {
                let name = c.column_descr().name();
                assert_eq!(
                    c.bloom_filter_offset().is_some(),
                    name == column,
                    "{table}.{name}"
                );
            }
        }
    }
    // A column no table being written has is refused before anything is written.
    let other = tempfile::tempdir().unwrap();
    let bad = TpchOptions::new(0.01)
        .with_tables(vec![TpchTable::Nation])
        .with_bloom_filter_columns(vec!["l_partkey".into()]);
    let e = generate_tpch_with_options(other.path(), &bad).unwrap_err();
    assert!(e.to_string().contains("'l_partkey'"), "{e}");
    assert!(!other.path().join("nation.parquet").exists());
}

#[test]
fn edge_files_are_readable_with_the_expected_row_groups() {
    let out = tempfile::tempdir().unwrap();
    let written = generate_edge(out.path(), false).unwrap();
    assert_eq!(written.len(), 4);
    assert!(!out.path().join("huge_row_group.parquet").exists());

    let edge_types = metadata(&out.path().join("edge_types.parquet"));
    assert_eq!(
        edge_types.file_metadata().num_rows(),
        EDGE_TYPES_ROWS as i64
    );
    assert_eq!(
        edge_types.num_row_groups(),
        EDGE_TYPES_ROWS / EDGE_TYPES_ROW_GROUP_ROWS
    );
    assert_eq!(
        metadata(&out.path().join("many_row_groups.parquet")).num_row_groups(),
        MANY_ROW_GROUPS_COUNT
    );
    assert_eq!(
        metadata(&out.path().join("long_strings.parquet"))
            .file_metadata()
            .num_rows(),
        40
    );
    let empty = metadata(&out.path().join("empty.parquet"));
    assert_eq!(empty.file_metadata().num_rows(), 0);
    assert_eq!(empty.num_row_groups(), 0);

    let batches = read_all(&out.path().join("edge_types.parquet"));
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, EDGE_TYPES_ROWS);
    let schema = batches[0].schema();
    assert_eq!(schema.fields().len(), 18);
    assert_eq!(
        schema.field_with_name("s_view").unwrap().data_type(),
        &DataType::Utf8View
    );
    assert_eq!(
        schema.field_with_name("s_large").unwrap().data_type(),
        &DataType::LargeUtf8
    );
    // Row group 3 is all NULL in i32; all_null is all NULL; id is never NULL.
    let row_group_3 = &batches[3];
    let i32_column = row_group_3.column_by_name("i32").unwrap();
    assert_eq!(i32_column.null_count(), i32_column.len());
    for batch in &batches {
        let all_null = batch.column_by_name("all_null").unwrap();
        assert_eq!(all_null.null_count(), all_null.len());
        assert_eq!(batch.column_by_name("id").unwrap().null_count(), 0);
    }
    // Roughly 10% NULLs in an ordinary column.
    let i64_nulls: usize = batches
        .iter()
        .map(|batch| batch.column_by_name("i64").unwrap().null_count())
        .sum();
    assert!((1_500..2_500).contains(&i64_nulls), "{i64_nulls}");
    // ~90% of skew_key values are the hot key 7.
    let hot: usize = batches
        .iter()
        .map(|batch| {
            let column = batch.column_by_name("skew_key").unwrap();
            column
                .as_primitive::<Int64Type>()
                .iter()
                .filter(|value| *value == Some(7))
                .count()
        })
        .sum();
    assert!(hot > EDGE_TYPES_ROWS * 3 / 4, "{hot}");
    let first_i32 = batches[0]
        .column_by_name("i32")
        .unwrap()
        .as_primitive::<Int32Type>()
        .value(0);
    assert_eq!(first_i32, i32::MIN);

    let long_strings = read_all(&out.path().join("long_strings.parquet"));
    let lengths: Vec<usize> = long_strings
        .iter()
        .flat_map(|batch| {
            let strings = batch.column_by_name("s").unwrap().as_string::<i32>();
            (0..strings.len())
                .filter(|&i| strings.is_valid(i))
                .map(|i| strings.value(i).len())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lengths.iter().filter(|&&len| len == 1 << 20).count(), 5);
    assert!(lengths.contains(&0));
}

#[test]
fn edge_data_is_deterministic() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    generate_edge(first.path(), false).unwrap();
    generate_edge(second.path(), false).unwrap();
    for name in ["edge_types", "long_strings", "many_row_groups", "empty"] {
        let file = format!("{name}.parquet");
        assert_eq!(
            read_all(&first.path().join(&file)),
            read_all(&second.path().join(&file)),
            "{name}"
        );
    }
}
