//! Cache keys, laid out so every entry of one instance shares a byte prefix.

use std::fmt;

use crate::ids::OrthancId;

/// One cached image: an instance, a frame, and a canonical variant name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub instance: OrthancId,
    pub frame: u32,
    /// Canonical description of what was made (format and its parameters), e.g. `png` or `jpeg.q90`.
    pub variant: String,
}

impl CacheKey {
    /// `p/{instance}/{frame}/{variant}`: `instance_prefix` finds all of an instance's entries.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!("{}{}/{}", Self::instance_prefix(&self.instance), self.frame, self.variant).into_bytes()
    }

    pub fn instance_prefix(instance: &OrthancId) -> String {
        format!("p/{instance}/")
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.instance, self.frame, self.variant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_prefix_covers_all_frames_and_variants() {
        let id = OrthancId::parse("8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe").unwrap();
        let k = CacheKey { instance: id.clone(), frame: 2, variant: "png".into() };
        let bytes = k.to_bytes();
        assert!(bytes.starts_with(CacheKey::instance_prefix(&id).as_bytes()));
        assert_eq!(bytes, b"p/8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe/2/png");
    }
}
