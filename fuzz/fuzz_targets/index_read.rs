//! Index sidecars (roaring-bitmap postings behind a directory of key blocks), checksums
//! taken as correct: every predicate shape the index serves, on every column the footer names.
//! A panic, a hang or a blown memory limit is a finding; an error is the expected answer.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Decoder panics are contained (`ooc_io::contain_panic`); libFuzzer's panic hook would
    // abort on them first. The standard hook instead: a panic that escapes ooc still ends the
    // run (libfuzzer-sys aborts then).
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| drop(std::panic::take_hook()));
    ooc_io::fuzzing::index_sidecar(data);
});
