//! Entry points for the fuzz targets under `fuzz/` that reach the engine's private readers
//! (built only with `--cfg fuzzing`, which `cargo fuzz` sets).

/// Arbitrary bytes as a spill file with matching checks, read back whole (the `spill_read`
/// target; the framing is described at the reader's entry point).
pub fn spill_read(data: &[u8]) {
    crate::memory::fuzz_spill_read(data);
}
