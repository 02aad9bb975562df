//! The process's resident memory as the kernel counts it, for comparing with what the pool
//! accounts for.
//!
//! Linux only (`/proc/self/statm`, `/proc/self/status`); elsewhere every figure is `None` and
//! the reports leave them out. `statm` is read on the pool's slow path (a new peak) and by the
//! timeline sampler: one short read, a few microseconds.

/// Resident bytes of the process, split the way the kernel splits them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResidentMemory {
    /// All resident bytes (`VmRSS`).
    pub total: u64,
    /// Resident bytes backed by files or shared memory (`RssFile` + `RssShmem`): mapped
    /// Parquet files, cache entries, the binary itself. The kernel may drop these under
    /// pressure without swapping.
    pub file: u64,
}

impl ResidentMemory {
    /// Anonymous resident bytes (`RssAnon`): the heap, stacks, private buffers.
    pub fn anon(&self) -> u64 {
        self.total.saturating_sub(self.file)
    }
}

/// The process's resident memory now, or `None` where it cannot be read.
pub fn resident_memory() -> Option<ResidentMemory> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut fields = statm.split_ascii_whitespace().skip(1);
    let resident: u64 = fields.next()?.parse().ok()?;
    let shared: u64 = fields.next()?.parse().ok()?;
    let page = page_size();
    Some(ResidentMemory {
        total: resident * page,
        file: shared * page,
    })
}

/// The highest resident set size of the process so far (`VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn page_size() -> u64 {
    use std::sync::OnceLock;
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 {
            size as u64
        } else {
            4096
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn resident_memory_grows_with_touched_heap() {
        let before = resident_memory().unwrap();
        let block = vec![1u8; 64 << 20];
        let after = resident_memory().unwrap();
        assert!(
            after.total >= before.total + (48 << 20),
            "{before:?} {after:?}"
        );
        assert!(after.anon() >= before.anon() + (48 << 20));
        assert!(std::hint::black_box(&block).iter().all(|&b| b == 1));
        assert!(peak_rss_bytes().unwrap() >= after.total);
    }
}
