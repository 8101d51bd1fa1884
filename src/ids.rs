//! Validated Orthanc resource ids: the only strings that ever reach an Orthanc URL.

use std::fmt;

/// An Orthanc id: five groups of 8 lowercase hex digits joined by `-` (44 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrthancId(String);

impl OrthancId {
    pub const LEN: usize = 44;

    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != Self::LEN {
            return None;
        }
        let ok = b.iter().enumerate().all(|(i, &c)| {
            if i % 9 == 8 {
                c == b'-'
            } else {
                c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
            }
        });
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Peers send ids as strings: they are parsed again on arrival.
impl TryFrom<String> for OrthancId {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        OrthancId::parse(&s).ok_or("not an Orthanc id")
    }
}

impl From<OrthancId> for String {
    fn from(id: OrthancId) -> String {
        id.0
    }
}

/// Append `bytes` to `out` as lowercase hex (request ids, log names of digests): no `format!`
/// per byte on the paths that make one per request.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// Is this a DICOM UID (digits and dots, at most 64 characters, no empty component)?
pub fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.split('.').all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
}

impl fmt::Display for OrthancId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids() {
        assert!(valid_uid("1.2.826.0.1.3680043.8.498.77001"));
        assert!(valid_uid("1"));
        for bad in ["", "1..2", ".1", "1.", "1.2a", "1.2.3/../x", &"1".repeat(65)] {
            assert!(!valid_uid(bad), "{bad}");
        }
    }

    #[test]
    fn accepts_orthanc_ids_only() {
        assert!(OrthancId::parse("8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe").is_some());
        for bad in [
            "",
            "8E289DB9-0E1437E1-3ECF395F-D8AAE463-F4BB49FE",
            "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49f",
            "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fee",
            "8e289db9_0e1437e1-3ecf395f-d8aae463-f4bb49fe",
            "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fg",
            "../../../system/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb4\u{e9}",
        ] {
            assert!(OrthancId::parse(bad).is_none(), "{bad:?}");
        }
    }
}
