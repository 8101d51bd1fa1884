//! Rendezvous (highest-random-weight) hashing: the owner of a key among a set of peers.
//!
//! Every peer gets a score for the key, `blake3(peer ‖ 0 ‖ key)`; the highest wins. All edges with
//! the same live set agree on the owner with no coordination, and removing a peer moves only the
//! keys it owned (~1/N of them), each to its runner-up.

/// The score of `peer` for `key`.
fn score(peer: &str, key: &str) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(peer.as_bytes());
    h.update(&[0]);
    h.update(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.finalize().as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// The peer of `peers` that owns `key`; `None` when `peers` is empty.
pub fn owner<'a, I>(peers: I, key: &str) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    // Ties (astronomically unlikely) go to the smaller name, so every edge picks the same one.
    peers.into_iter().max_by(|a, b| score(a, key).cmp(&score(b, key)).then_with(|| b.cmp(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("http://10.0.0.{i}:9722")).collect()
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:08x}-0e1437e1-3ecf395f-d8aae463-f4bb49fe")).collect()
    }

    fn owners(peers: &[String], keys: &[String]) -> Vec<String> {
        keys.iter().map(|k| owner(peers.iter().map(String::as_str), k).unwrap().to_owned()).collect()
    }

    #[test]
    fn keys_spread_evenly() {
        let (peers, keys) = (peers(3), keys(30_000));
        let owned = owners(&peers, &keys);
        for p in &peers {
            let n = owned.iter().filter(|o| *o == p).count();
            assert!((9_000..=11_000).contains(&n), "{p} owns {n} of 30000");
        }
    }

    #[test]
    fn the_order_of_the_list_does_not_matter() {
        let (mut peers, keys) = (peers(5), keys(1_000));
        let before = owners(&peers, &keys);
        peers.reverse();
        assert_eq!(owners(&peers, &keys), before);
    }

    #[test]
    fn a_peer_leaving_moves_only_its_own_keys() {
        let (peers, keys) = (peers(4), keys(20_000));
        let before = owners(&peers, &keys);
        let gone = &peers[2];
        let rest: Vec<String> = peers.iter().filter(|p| *p != gone).cloned().collect();
        let after = owners(&rest, &keys);
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if b != a {
                assert_eq!(b, gone, "only the departed peer's keys move");
                moved += 1;
            }
        }
        // ~1/4 of the keys, and all of the departed peer's.
        assert_eq!(moved, before.iter().filter(|o| *o == gone).count());
        assert!((4_000..=6_000).contains(&moved), "moved {moved} of 20000");
    }

    #[test]
    fn a_peer_joining_takes_about_one_nth() {
        let (peers4, keys) = (peers(4), keys(20_000));
        let before = owners(&peers4[..3], &keys);
        let after = owners(&peers4, &keys);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert!(
            after.iter().zip(&before).all(|(a, b)| a == b || *a == peers4[3]),
            "moves go to the newcomer"
        );
        assert!((4_000..=6_000).contains(&moved), "moved {moved} of 20000");
    }

    #[test]
    fn no_peers_no_owner() {
        assert_eq!(owner(std::iter::empty(), "k"), None);
    }
}
