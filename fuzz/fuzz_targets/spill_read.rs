//! Spill files (the engine's zstd-compressed Arrow IPC streams) read back with checks that
//! match the bytes: the IPC decoder and the narrowing's widening behind the checksums.
//! A panic, a hang or a blown memory limit is a finding; an error is the expected answer.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Decoder panics are contained (`ooc_io::contain_panic`); libFuzzer's panic hook would
    // abort on them first. The standard hook instead: a panic that escapes ooc still ends the
    // run (libfuzzer-sys aborts then).
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| drop(std::panic::take_hook()));
    ooc_engine::fuzzing::spill_read(data);
});
