//! Parquet files through ooc's reader: footer, schema, statistics, page index, bloom
//! filters and every page of every row group, read in morsels with statistics pruning. The
//! input is written to a file first (the reader maps files). A panic, a hang or a blown
//! memory limit is a finding; an error is the expected answer to a corrupt file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ooc_io::{CmpOp, ParquetDataset, PruneExpr, ReadOptions};

fuzz_target!(|data: &[u8]| {
    // The reader contains the parquet crate's panics on corrupt pages (`decode_step`: an error
    // naming the file); libFuzzer's panic hook would abort on them before that. The standard
    // hook instead: a panic that escapes ooc still ends the run (libfuzzer-sys aborts then).
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| drop(std::panic::take_hook()));
    let dir = std::env::temp_dir().join(format!("ooc-fuzz-parquet-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.parquet");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(dataset) = ParquetDataset::open(&path.display().to_string()) else {
        return;
    };
    // Prune with predicates on the first column, as a filtered scan would: its statistics,
    // page index and (for `=` on integers) bloom filters are read.
    if let Some(field) = dataset.schema().fields().first() {
        let column = field.name().clone();
        let _ = dataset.prune(&PruneExpr::IsNull {
            column: column.clone(),
            negated: true,
        });
        if field.data_type().is_integer() {
            if let Ok(value) =
                arrow::compute::cast(&arrow::array::Int64Array::from(vec![7]), field.data_type())
            {
                let predicate = PruneExpr::Compare {
                    column,
                    op: CmpOp::Eq,
                    value,
                };
                let (row_groups, _) = dataset.prune(&predicate);
                for rg in row_groups {
                    let _ = dataset.bloom_excludes(rg, &predicate);
                }
            }
        }
    }
    let morsels = dataset.plan_morsels(&dataset.all_row_groups(), 4096);
    let options = ReadOptions {
        batch_size: 1024,
        ..ReadOptions::default()
    };
    for morsel in morsels.iter().take(64) {
        let Ok(reader) = dataset.read_morsel(morsel, &options) else {
            continue;
        };
        for batch in reader {
            if batch.is_err() {
                break;
            }
        }
    }
});
