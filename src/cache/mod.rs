//! Image cache: keys and entries, the memory tier, the disk tier, and the tiered get-or-fill with single flight.

mod disk;
mod entry;
mod flight;
mod key;
mod memory;
mod negative;
mod tiered;

pub use disk::{DiskCache, DiskStats};
pub use entry::{Entry, EntryError};
pub use flight::{Flight, FlightError, Flights};
pub use key::CacheKey;
pub use memory::MemoryCache;
pub use negative::NegativeCache;
pub use tiered::{CacheStatus, TieredCache, Tiers};

/// The disk tier could not do what was asked. Never shown to clients: the request goes on without it.
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
