//! Where the process's memory is: resident set from `/proc`, and the heap as jemalloc sees it.
//!
//! RSS alone cannot tell a cache that is too big from an allocator that holds freed pages or a
//! leak; the heap figures can (`allocated` is live data, `resident` what the heap keeps in RAM).

/// One reading, in bytes. Heap figures are zero in binaries that do not use jemalloc (tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Resident set size of the process (heap, stacks, mapped binary, everything).
    pub resident: u64,
    /// Bytes handed out by the allocator and not yet freed, size-class rounding included.
    pub heap_allocated: u64,
    /// Bytes in pages the allocator has in use (allocated plus fragmentation inside them).
    pub heap_active: u64,
    /// Bytes of heap pages resident in RAM (active, freed but not yet returned, metadata).
    pub heap_resident: u64,
    /// Bytes of the allocator's own bookkeeping.
    pub heap_metadata: u64,
}

/// Read the figures now. Never fails: a figure that cannot be read is 0.
pub fn read() -> MemoryStats {
    use tikv_jemalloc_ctl::{epoch, stats};
    // jemalloc's statistics are a snapshot refreshed by advancing the epoch.
    let _ = epoch::advance();
    MemoryStats {
        resident: process_resident().unwrap_or(0),
        heap_allocated: stats::allocated::read().unwrap_or(0) as u64,
        heap_active: stats::active::read().unwrap_or(0) as u64,
        heap_resident: stats::resident::read().unwrap_or(0) as u64,
        heap_metadata: stats::metadata::read().unwrap_or(0) as u64,
    }
}

/// Resident set size from the `VmRSS` line of `/proc/self/status`; `None` off Linux.
fn process_resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_plausible_resident_size() {
        let m = read();
        assert!(m.resident > 1 << 20, "{m:?}");
        assert!(m.resident < 64 << 30, "{m:?}");
    }
}
