//! Image cache: keys and entries, the memory tier, the disk tier, the two as one, and single flight.

mod disk;
mod entry;
mod flight;
mod key;
mod memory;
mod readers;
mod tiered;

pub use disk::{DiskCache, DiskStats};
pub use entry::{Entry, EntryError};
pub use flight::{Flight, FlightError, Flights};
pub use key::CacheKey;
pub use memory::MemoryCache;
pub use tiered::{CacheStatus, TieredCache, Tiers};

/// The cache could not do what was asked. Never shown to clients in detail: a lookup or a store
/// goes on without the disk, and a purge that fails is an internal error.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("cache folder {path}: {why}")]
    Open { path: String, why: String },
    #[error("blocking task failed: {0}")]
    Join(String),
    #[error("cache file: {0}")]
    Io(String),
}
