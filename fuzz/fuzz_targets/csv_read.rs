//! CSV text through ooc's text reader: schema inference, chunking at record boundaries and
//! decoding, then a query over it. A panic, a hang or a blown memory limit is a finding; an
//! error is the expected answer to malformed text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ooc_engine::{Session, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("ooc-fuzz-csv-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.csv");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let session = Session::new(SessionConfig::default().with_threads(1));
    if session
        .register_file("t", &path.display().to_string())
        .is_err()
    {
        return;
    }
    if let Ok(frame) = session.sql("SELECT * FROM t") {
        let _ = frame.collect();
    }
});
