//! The result cache's entries as `ooc_io::cache` writes and reads them: checked chunk by chunk
//! as they are read, so that a scan of some columns reads (and checks) only those columns'
//! bytes, and a damaged byte is an error, never a wrong value.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Decimal128Array, Int64Array, ListArray, RecordBatch, StringArray,
    StringViewArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use ooc_io::cache::{CacheKey, CacheOptions, Claim, CommitInfo, Lookup, ResultCache};

const BATCHES: usize = 6;
const ROWS: usize = 20_000;
/// Ids are far from every other value, so that the bytes of one id occur only where it is.
const ID_BASE: i64 = 1 << 40;

/// Columns: `id` Int64, `price` Decimal128(15,2), `name` Utf8, `note` Utf8View, and with
/// `nested`, `tags` List<Int64>.
fn batch(i: usize, nested: bool) -> RecordBatch {
    let base = (i * ROWS) as i64;
    let ids = Int64Array::from_iter_values(ID_BASE + base..ID_BASE + base + ROWS as i64);
    let prices = Decimal128Array::from_iter_values((0..ROWS as i128).map(|v| v * 7 + 1))
        .with_precision_and_scale(15, 2)
        .unwrap();
    let names =
        StringArray::from_iter_values((0..ROWS).map(|r| format!("name-{}", base + r as i64)));
    let notes = StringViewArray::from_iter(
        (0..ROWS).map(|r| (r % 5 != 0).then(|| format!("a somewhat longer note {r}"))),
    );
    let mut fields = vec![
        Field::new("id", DataType::Int64, false),
        Field::new("price", DataType::Decimal128(15, 2), false),
        Field::new("name", DataType::Utf8, false),
        Field::new("note", DataType::Utf8View, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(ids),
        Arc::new(prices),
        Arc::new(names),
        Arc::new(notes),
    ];
    if nested {
        let tags = ListArray::from_iter_primitive::<Int64Type, _, _>(
            (0..ROWS).map(|r| Some(vec![Some(r as i64), None])),
        );
        fields.push(Field::new("tags", tags.data_type().clone(), true));
        columns.push(Arc::new(tags));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// A cache (checking only as it reads) holding one entry; its key and data file.
fn store(dir: &std::path::Path, nested: bool) -> (ResultCache, CacheKey, std::path::PathBuf) {
    let options = CacheOptions {
        eager_check_bytes: 0,
        ..CacheOptions::new(dir)
    };
    let cache = ResultCache::open(&options).unwrap();
    let key = CacheKey::of(format!("test {nested}").as_bytes());
    let Claim::Compute(claim, miss) = cache.claim(key) else {
        panic!("a fresh cache has the key");
    };
    assert_eq!(miss.reason, "no entry for this key");
    let mut writer = claim.writer(&batch(0, nested).schema()).unwrap();
    for i in 0..BATCHES {
        writer.write(&batch(i, nested)).unwrap();
    }
    writer.commit(CommitInfo::default()).unwrap();
    let Lookup::Hit(result) = cache.lookup(key) else {
        panic!("the entry just written is not found");
    };
    let path = result.path().to_path_buf();
    (cache, key, path)
}

/// Flip a byte of the id of row 10,000 of batch `b` (where its bytes are in the file): in the
/// middle of the id column, more than a chunk (64 KiB) from the batch's message and from the
/// next column.
fn damage(path: &std::path::Path, b: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let needle = (ID_BASE + (b * ROWS) as i64 + 10_000).to_le_bytes();
    assert_eq!(bytes.windows(8).filter(|w| *w == needle).count(), 1);
    let at = bytes
        .windows(8)
        .position(|w| w == needle)
        .expect("the value is in the file");
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn every_column_type_reads_back_from_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    for nested in [false, true] {
        let (cache, key, _) = store(dir.path(), nested);
        let Lookup::Hit(result) = cache.lookup(key) else {
            panic!("no hit")
        };
        assert_eq!(result.num_rows(), (BATCHES * ROWS) as u64);
        let all = result.decoder(None).unwrap();
        let two = result.decoder(Some(vec![3, 1])).unwrap();
        for i in 0..BATCHES {
            let want = batch(i, nested);
            assert_eq!(all.batch(i).unwrap(), want);
            let got = two.batch(i).unwrap();
            assert_eq!(got.num_columns(), 2);
            assert_eq!(got.column(0).as_ref(), want.column(3).as_ref());
            assert_eq!(got.column(1).as_ref(), want.column(1).as_ref());
        }
    }
}

#[test]
fn a_damaged_column_fails_only_the_reads_that_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, key, path) = store(dir.path(), false);
    damage(&path, 4);
    let Lookup::Hit(result) = cache.lookup(key) else {
        panic!("header and footer are intact: still a hit")
    };
    // The other columns of every batch do not share a chunk with that id.
    let others = result.decoder(Some(vec![2])).unwrap();
    for i in 0..BATCHES {
        assert_eq!(
            others.batch(i).unwrap().column(0).as_ref(),
            batch(i, false).column(2).as_ref()
        );
    }
    let ids = result.decoder(Some(vec![0])).unwrap();
    for i in 0..4 {
        assert_eq!(
            ids.batch(i).unwrap().column(0).as_ref(),
            batch(i, false).column(0).as_ref()
        );
    }
    let err = ids.batch(4).unwrap_err().to_string();
    assert!(
        err.contains("checksum mismatch") && err.contains(&path.display().to_string()),
        "{err}"
    );
    // The damaged entry is gone: the next lookup is a miss, and verify finds nothing bad left.
    assert!(matches!(cache.lookup(key), Lookup::Miss(_)));
    assert!(cache.verify().removed.is_empty());
}

#[test]
fn a_nested_column_makes_every_read_check_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, key, path) = store(dir.path(), true);
    damage(&path, 2);
    let Lookup::Hit(result) = cache.lookup(key) else {
        panic!("no hit")
    };
    let tags = result.decoder(Some(vec![4])).unwrap();
    assert!(tags.batch(1).is_ok());
    assert!(tags.batch(2).is_err());
}

#[test]
fn verify_finds_damage_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _, path) = store(dir.path(), false);
    damage(&path, 5);
    let report = cache.verify();
    assert_eq!(report.checked, 1);
    assert_eq!(report.removed.len(), 1);
    assert!(
        report.removed[0].1.contains("checksum mismatch"),
        "{:?}",
        report.removed
    );
    assert!(!path.exists());
}
