//! Input files that another program changes while a query reads them.
//!
//! Files are memory-mapped: past a truncation, touching a mapped page kills the process with
//! `SIGBUS`, and bytes rewritten in place are not those the footer describes. Before each
//! morsel is read the scan compares the file's size and modification time with those it had
//! when the query opened it, and stops with an error naming the file. A file deleted or
//! replaced by a rename is not a change: the mapping keeps the bytes of the file it mapped,
//! and the query answers from them.
//!
//! Each query runs on one thread with small batches, so that when the first batch arrives
//! the scan is still inside the first row group and the change happens between morsels.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use arrow::array::RecordBatch;
use ooc::{Session, SessionConfig};

const QUERY: &str = "SELECT l_orderkey, l_comment FROM lineitem";

fn copy_of_lineitem(dir: &Path) -> PathBuf {
    let path = dir.join("lineitem.parquet");
    std::fs::copy(common::test_data_dir().join("lineitem.parquet"), &path).unwrap();
    path
}

/// A running `QUERY` over `path`, with its first batch already taken.
fn started(path: &Path) -> ooc::QueryStream {
    let config = SessionConfig::default()
        .with_threads(1)
        .with_batch_size(1000);
    let session = Session::new(config);
    session
        .register_parquet("lineitem", path.to_str().unwrap())
        .unwrap();
    let mut stream = session.sql(QUERY).unwrap().execute().unwrap();
    let first = stream.next().unwrap().unwrap();
    assert!(first.num_rows() > 0);
    stream
}

fn rest(stream: ooc::QueryStream) -> ooc::Result<Vec<RecordBatch>> {
    stream.collect()
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

#[test]
fn a_file_rewritten_in_place_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of_lineitem(dir.path());
    let stream = started(&path);
    // Same bytes and size; a writer that rewrote it in place leaves a new modification time.
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(10))
        .unwrap();
    let err = rest(stream).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "{} changed while the query read it",
            path.display()
        )) && err.contains("modification time"),
        "{err}"
    );
}

#[test]
fn a_file_truncated_is_an_error_naming_it_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of_lineitem(dir.path());
    // Cut the file where its second row group starts: the first stays readable, every later
    // page (and the footer) is gone.
    let metadata = parquet::file::reader::FileReader::metadata(
        &parquet::file::serialized_reader::SerializedFileReader::new(
            std::fs::File::open(&path).unwrap(),
        )
        .unwrap(),
    )
    .clone();
    assert!(metadata.num_row_groups() > 2);
    let column = metadata.row_group(1).column(0);
    let cut = column
        .dictionary_page_offset()
        .unwrap_or(column.data_page_offset()) as u64;
    let size = std::fs::metadata(&path).unwrap().len();

    let stream = started(&path);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let err = rest(stream).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "{} changed while the query read it: it had {size} bytes when the query started \
             and has {cut} now",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn a_file_deleted_or_replaced_by_a_rename_is_still_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of_lineitem(dir.path());
    let all = {
        let session = Session::new(SessionConfig::default());
        session
            .register_parquet("lineitem", path.to_str().unwrap())
            .unwrap();
        rows(&rest(session.sql(QUERY).unwrap().execute().unwrap()).unwrap())
    };

    let stream = started(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(rows(&rest(stream).unwrap()) + 1000, all);

    let path = copy_of_lineitem(dir.path());
    let stream = started(&path);
    let other = dir.path().join("other.parquet");
    std::fs::write(&other, b"not parquet at all").unwrap();
    std::fs::rename(&other, &path).unwrap();
    assert_eq!(rows(&rest(stream).unwrap()) + 1000, all);
}
