//! Join planning end to end on small hand-written Parquet files: results of every join type
//! and subquery form, the join order chosen from statistics, and the key-range dynamic filter
//! that lets a selective build side skip probe-side row groups.

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use common::{batch, write_parquet};
use ooc_engine::{EngineError, Session, SessionConfig};

/// `fact`: 10,000 rows, `id` = `k` = 0..9999 sorted, `g` = id % 10, in 10 row groups.
/// `dim`: 100 rows with keys 2000..2099 and a name. `small`: keys with NULLs and duplicates.
fn fixture() -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<i64> = (0..10_000).collect();
    let fact = batch(vec![
        ("id", Arc::new(Int64Array::from(ids.clone())) as ArrayRef),
        ("k", Arc::new(Int64Array::from(ids.clone()))),
        (
            "g",
            Arc::new(Int64Array::from(
                ids.iter().map(|i| i % 10).collect::<Vec<_>>(),
            )),
        ),
    ]);
    write_parquet(&dir.path().join("fact.parquet"), &fact, 1000);
    let dim_keys: Vec<i64> = (2000..2100).collect();
    let dim = batch(vec![
        (
            "dk",
            Arc::new(Int64Array::from(dim_keys.clone())) as ArrayRef,
        ),
        (
            "name",
            Arc::new(StringArray::from(
                dim_keys.iter().map(|k| format!("d{k}")).collect::<Vec<_>>(),
            )),
        ),
    ]);
    write_parquet(&dir.path().join("dim.parquet"), &dim, 1000);
    let small = batch(vec![
        (
            "sk",
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(1),
                Some(2),
                None,
                Some(5),
            ])) as ArrayRef,
        ),
        (
            "sv",
            Arc::new(StringArray::from(vec!["a", "b", "c", "n", "e"])),
        ),
    ]);
    write_parquet(&dir.path().join("small.parquet"), &small, 1000);
    let other = batch(vec![
        (
            "ok",
            Arc::new(Int64Array::from(vec![Some(1), Some(3), None, Some(3)])) as ArrayRef,
        ),
        ("ov", Arc::new(StringArray::from(vec!["x", "y", "z", "w"]))),
    ]);
    write_parquet(&dir.path().join("other.parquet"), &other, 1000);
    let session = Session::new(
        SessionConfig::default()
            .with_threads(2)
            .with_batch_size(256),
    );
    session.register_directory(dir.path()).unwrap();
    (dir, session)
}

fn rows(session: &Session, sql: &str) -> Vec<String> {
    let batches = session
        .sql(sql)
        .and_then(|df| df.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    common::render(&batches)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn error(session: &Session, sql: &str) -> EngineError {
    match session.sql(sql).and_then(|df| df.collect()) {
        Ok(_) => panic!("{sql}: expected an error"),
        Err(e) => e,
    }
}

#[test]
fn outer_joins_with_nulls_and_duplicates() {
    let (_dir, s) = fixture();
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sk, sv, ok, ov FROM small JOIN other ON sk = ok"
        )),
        vec!["1|a|1|x", "1|b|1|x"]
    );
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sv, ov FROM small LEFT JOIN other ON sk = ok"
        )),
        vec!["a|x", "b|x", "c|NULL", "e|NULL", "n|NULL"]
    );
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sv, ov FROM small RIGHT JOIN other ON sk = ok"
        )),
        vec!["NULL|w", "NULL|y", "NULL|z", "a|x", "b|x"]
    );
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sv, ov FROM small FULL JOIN other ON sk = ok"
        )),
        vec!["NULL|w", "NULL|y", "NULL|z", "a|x", "b|x", "c|NULL", "e|NULL", "n|NULL"]
    );
    // A condition on the nullable side in ON keeps the preserved rows.
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sv, ov FROM small LEFT JOIN other ON sk = ok AND ov = 'nope'"
        )),
        vec!["a|NULL", "b|NULL", "c|NULL", "e|NULL", "n|NULL"]
    );
    assert_eq!(
        rows(&s, "SELECT count(*) FROM small, other"),
        vec!["20"],
        "cross join"
    );
}

#[test]
fn subqueries_in_where_and_having() {
    let (_dir, s) = fixture();
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sv FROM small WHERE sk IN (SELECT ok FROM other)"
        )),
        vec!["a", "b"]
    );
    // NOT IN over a set containing NULL is never TRUE.
    assert_eq!(
        rows(
            &s,
            "SELECT sv FROM small WHERE sk NOT IN (SELECT ok FROM other)"
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sv FROM small WHERE sk NOT IN (SELECT ok FROM other WHERE ok IS NOT NULL)"
        )),
        vec!["c", "e"]
    );
    // ... and over an empty set always TRUE, even for a NULL key.
    assert_eq!(
        rows(
            &s,
            "SELECT count(*) FROM small WHERE sk NOT IN (SELECT ok FROM other WHERE ok > 100)"
        ),
        vec!["5"]
    );
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sv FROM small WHERE EXISTS (SELECT * FROM other WHERE ok = sk)"
        )),
        vec!["a", "b"]
    );
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sv FROM small WHERE NOT EXISTS (SELECT * FROM other WHERE ok = sk)"
        )),
        vec!["c", "e", "n"]
    );
    // Correlated count: keys without rows count 0, not NULL.
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sv FROM small WHERE (SELECT count(*) FROM other WHERE ok = sk) = 0"
        )),
        vec!["c", "e", "n"]
    );
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sv FROM small WHERE sk > (SELECT min(ok) FROM other)"
        )),
        vec!["c", "e"]
    );
    assert_eq!(
        rows(
            &s,
            "SELECT g, count(*) FROM fact GROUP BY g HAVING count(*) >= (SELECT count(*) FROM dim) * 10 ORDER BY g LIMIT 2"
        ),
        vec!["0|1000", "1|1000"]
    );
    let e = error(&s, "SELECT sv FROM small WHERE sk = (SELECT ok FROM other)");
    assert!(e.to_string().contains("more than one row"), "{e}");
    // A correlated NOT IN: over an empty set TRUE, even for a NULL key.
    assert_eq!(
        rows(
            &s,
            "SELECT sv FROM small WHERE sk NOT IN (SELECT ok FROM other WHERE ov = sv) ORDER BY sv"
        ),
        vec!["a", "b", "c", "e", "n"]
    );
    // ... and correlated by an inequality, as a value (the sets hold no NULL here).
    assert_eq!(
        rows(
            &s,
            "SELECT sv, sk NOT IN (SELECT ok FROM other WHERE ok <= sk + 1) FROM small ORDER BY sv"
        ),
        vec!["a|false", "b|false", "c|true", "e|true", "n|true"]
    );
}

#[test]
fn subqueries_correlated_by_inequalities_lateral_and_join_conditions() {
    let (_dir, s) = fixture();
    // A count over every smaller key: decorrelated through the distinct outer values (NULL
    // included: `sk < NULL` matches nothing, so its count is 0).
    assert_eq!(
        rows(
            &s,
            "SELECT sv, (SELECT count(*) FROM other WHERE ok < sk) FROM small ORDER BY sv"
        ),
        vec!["a|0", "b|0", "c|1", "e|3", "n|0"]
    );
    // A condition that holds for a NULL outer value: NULL must meet its own domain row.
    assert_eq!(
        rows(
            &s,
            "SELECT sv, (SELECT count(*) FROM other WHERE ok < sk OR sk IS NULL) FROM small \
             ORDER BY sv"
        ),
        vec!["a|0", "b|0", "c|1", "e|3", "n|4"]
    );
    // A grouped SELECT with a correlated subquery on its key.
    assert_eq!(
        rows(
            &s,
            "SELECT sk, count(*), (SELECT count(*) FROM other WHERE ok = sk) FROM small \
             GROUP BY sk ORDER BY sk NULLS LAST"
        ),
        vec!["1|2|1", "2|1|0", "5|1|0", "NULL|1|0"]
    );
    // LATERAL with an aggregate: one row per outer row.
    assert_eq!(
        rows(
            &s,
            "SELECT sv, t.n, t.m FROM small, LATERAL (SELECT count(*) AS n, max(ov) AS m \
             FROM other WHERE ok >= sk) t ORDER BY sv"
        ),
        vec!["a|3|y", "b|3|y", "c|2|y", "e|0|NULL", "n|0|NULL"]
    );
    // A subquery in an inner join's ON.
    assert_eq!(
        rows(
            &s,
            "SELECT count(*) FROM small JOIN other ON sk = ok AND ov IN (SELECT 'x')"
        ),
        vec!["2"]
    );
    // A correlated scalar subquery with several rows for a key is an error, as in SQL (not
    // a row per match); one row per key (an aggregate, LIMIT 1) is a value.
    let e = error(
        &s,
        "SELECT sv FROM small WHERE sk > (SELECT ok FROM other WHERE ok = sk + 2)",
    );
    assert!(e.to_string().contains("more than one row"), "{e}");
    let e = error(
        &s,
        "SELECT sv, (SELECT count(*) FROM other WHERE ok >= sk GROUP BY ov) FROM small",
    );
    assert!(e.to_string().contains("more than one row"), "{e}");
    assert_eq!(
        rows(
            &s,
            "SELECT sv, (SELECT ov FROM other WHERE ok >= sk ORDER BY ov LIMIT 1) FROM small \
             ORDER BY sv"
        ),
        vec!["a|w", "b|w", "c|w", "e|NULL", "n|NULL"]
    );
    // What stays refused says so.
    let e = error(
        &s,
        "SELECT count(*) FROM small, dim WHERE sk > (SELECT count(*) FROM other \
         WHERE ok < sk AND ok < dk)",
    );
    assert!(e.to_string().contains("more than one FROM relation"), "{e}");
    let e = error(
        &s,
        "SELECT count(*) FROM small LEFT JOIN other ON sk = ok AND \
         (SELECT count(*) FROM dim WHERE dk > sk AND dk > ok) > 0",
    );
    assert!(e.to_string().contains("more than one FROM relation"), "{e}");
    let e = error(
        &s,
        "SELECT * FROM small, LATERAL (SELECT first(ov) FROM other WHERE ok = sk) t",
    );
    assert!(e.to_string().contains("LATERAL"), "{e}");
}

#[test]
fn union_and_shared_cte() {
    let (_dir, s) = fixture();
    assert_eq!(
        sorted(rows(
            &s,
            "SELECT sk FROM small UNION ALL SELECT ok FROM other"
        ))
        .len(),
        9
    );
    assert_eq!(
        sorted(rows(&s, "SELECT sk FROM small UNION SELECT ok FROM other")),
        vec!["1", "2", "3", "5", "NULL"]
    );
    let sql = "WITH t AS (SELECT g, count(*) AS c FROM fact GROUP BY g) \
               SELECT a.g, b.c FROM t a, t b WHERE a.g = b.g AND a.c = (SELECT max(c) FROM t) \
               ORDER BY a.g LIMIT 3";
    assert_eq!(rows(&s, sql), vec!["0|1000", "1|1000", "2|1000"]);
    let explain = s.sql(sql).unwrap().explain(false).unwrap();
    assert!(explain.contains("Materialize"), "{explain}");
}

#[test]
fn join_order_builds_the_small_side_and_prunes_the_probe_scan() {
    let (_dir, s) = fixture();
    // The small dimension is written first; the fact table must still be the probe side.
    let sql = "SELECT count(*), sum(id), min(name) FROM dim, fact WHERE dk = k";
    assert_eq!(rows(&s, sql), vec!["100|204950|d2000"]);
    let analyzed = s.sql(sql).unwrap().explain(true).unwrap();
    // Keys 2000..2099 live in one of the fact table's ten row groups: the build side's key
    // range is published to the fact scan, which skips the other nine.
    assert!(
        analyzed.contains("morsels_skipped_dynamic=9"),
        "expected nine skipped fact row groups:\n{analyzed}"
    );
}

#[test]
fn build_keys_filter_rows_below_an_aggregate() {
    let (_dir, s) = fixture();
    // The join key is the aggregate's grouping key: the fact scan drops rows whose key is not
    // among the dimension's 100 keys before they are aggregated.
    let sql = "SELECT count(*), sum(c) FROM dim, (SELECT k, count(*) AS c FROM fact GROUP BY k) a \
               WHERE a.k = dk";
    assert_eq!(rows(&s, sql), vec!["100|100"]);
    let analyzed = s.sql(sql).unwrap().explain(true).unwrap();
    assert!(analyzed.contains("key_set_published=100"), "{analyzed}");
    // Nine row groups are skipped by the key range; 900 of the 1000 rows read are dropped.
    assert!(analyzed.contains("morsels_skipped_dynamic=9"), "{analyzed}");
    assert!(
        analyzed.contains("rows_dropped_by_join_keys=900"),
        "{analyzed}"
    );
}

#[test]
fn a_semi_join_builds_the_side_with_fewer_bytes_not_fewer_rows() {
    let (_dir, s) = fixture();
    // The outer side has fewer estimated rows (500 against 3300) but eleven columns; the
    // subquery has one. Building the wide side cost TPC-H Q18 a 15M-row hash table of orders
    // where 624 keys would do.
    let sql = "SELECT count(*), sum(a.id), sum(a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8) \
               FROM (SELECT id, k, g, id + 1 AS a1, id + 2 AS a2, id + 3 AS a3, id + 4 AS a4, \
                            id + 5 AS a5, id + 6 AS a6, id + 7 AS a7, id + 8 AS a8 \
                     FROM fact WHERE g = 1) a \
               WHERE a.k IN (SELECT k FROM fact WHERE id > 5)";
    // Rows with g = 1 are ids 1, 11, …, 9991; only id 1 has no k above 5.
    let sum_ids: i64 = (11..10_000).step_by(10).sum();
    let sum_a: i64 = (11..10_000i64).step_by(10).map(|id| 8 * id + 36).sum();
    assert_eq!(rows(&s, sql), vec![format!("999|{sum_ids}|{sum_a}")]);
    let plan = s.sql(sql).unwrap().explain(false).unwrap();
    assert!(plan.contains("[ProbeSemi]"), "{plan}");
    assert!(!plan.contains("(build: left)"), "{plan}");
}

#[test]
fn equalities_through_a_shared_column_join_the_other_two_directly() {
    let (_dir, s) = fixture();
    // `dk = f.k` and `f2.id = f.k` also mean `dk = f2.id`: the dimension and the filtered
    // second fact copy can meet before either meets the fact table, and the last join needs
    // one key, not both of the written ones (which would be equal on every joined row). The
    // two are written first: joining them is estimated no larger than joining `f2` to `f`.
    let sql = "SELECT count(*), sum(f.id) FROM dim d, fact f2, fact f \
               WHERE d.dk = f.k AND f2.id = f.k AND f2.g = 3";
    // Keys 2000..2099 with id % 10 = 3: 2003, 2013, ..., 2093.
    assert_eq!(rows(&s, sql), vec!["10|20480"]);
    let plan = s.sql(sql).unwrap().explain(false).unwrap();
    let joins: Vec<&str> = plan.lines().filter(|l| l.contains("HashJoin")).collect();
    assert_eq!(joins.len(), 2, "{plan}");
    assert!(
        joins
            .iter()
            .any(|j| j.contains("dk = f2.id") || j.contains("f2.id = d.dk")),
        "the implied equality is not a join key:\n{plan}"
    );
    assert!(
        joins.iter().all(|j| !j.contains(", ")),
        "a redundant second key:\n{plan}"
    );
    // The same answer when no equality can be implied (a key wrapped in arithmetic).
    assert_eq!(
        rows(
            &s,
            "SELECT count(*), sum(f.id) FROM fact f, dim d, fact f2 \
             WHERE d.dk = f.k AND f2.id + 0 = f.k AND f2.g = 3"
        ),
        vec!["10|20480"]
    );
}
