//! SQL text, down to a physical plan: parse, bind, decorrelate, optimize and plan
//! (`EXPLAIN`, nothing executed) over three small in-memory tables. Any input is fine; a
//! panic, a stack overflow, a hang or a blown memory limit is a finding.

#![no_main]

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use libfuzzer_sys::fuzz_target;
use ooc_engine::{Session, SessionConfig};

fn session() -> &'static Session {
    static SESSION: OnceLock<Session> = OnceLock::new();
    SESSION.get_or_init(|| {
        let session = Session::new(SessionConfig::default().with_threads(1));
        let table = |name: &str, n: i64| {
            let schema = Arc::new(Schema::new(vec![
                Field::new("a", DataType::Int64, true),
                Field::new("b", DataType::Utf8, true),
                Field::new("c", DataType::Float64, true),
                Field::new("d", DataType::Decimal128(12, 2), true),
                Field::new("e", DataType::Date32, true),
            ]));
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter(
                    (0..n).map(|i| (i % 5 != 0).then_some(i)),
                )),
                Arc::new(StringArray::from_iter(
                    (0..n).map(|i| (i % 7 != 0).then(|| format!("s{i}"))),
                )),
                Arc::new(Float64Array::from_iter(
                    (0..n).map(|i| Some(i as f64 / 3.0)),
                )),
                Arc::new(
                    Decimal128Array::from_iter((0..n).map(|i| Some(i as i128 * 125)))
                        .with_precision_and_scale(12, 2)
                        .expect("valid decimal"),
                ),
                Arc::new(Date32Array::from_iter(
                    (0..n).map(|i| Some(19_000 + i as i32)),
                )),
            ];
            let batch = RecordBatch::try_new(Arc::clone(&schema), columns).expect("valid batch");
            let frame = session
                .read_batches(name, schema, vec![batch])
                .expect("table");
            session.register_view(name, &frame);
        };
        table("t", 20);
        table("u", 7);
        table("v", 0);
        session
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(frame) = session().sql(sql) {
        let _ = frame.explain(false);
    }
});
