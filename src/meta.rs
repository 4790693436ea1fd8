//! Durable key/value metadata (term, vote, ...): the in-memory map and the
//! payloads of its SET / REMOVE / SNAPSHOT records (FORMAT.md, "Records").

use alloc::vec::Vec;

use crate::format::Kind;

/// Longest key (its length is stored in one byte).
pub const MAX_KEY_LEN: usize = 255;

/// The map: a few keys (term, vote, ...), so a sorted vector beats a tree in
/// code size and memory; sorted so snapshots are deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MetaMap(Vec<(Vec<u8>, Vec<u8>)>);

impl MetaMap {
    pub fn new() -> Self {
        MetaMap(Vec::new())
    }

    fn find(&self, key: &[u8]) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_slice().cmp(key))
    }

    /// Sets `key`, returning its old value.
    #[inline]
    pub fn insert(&mut self, key: impl Into<Vec<u8>>, value: Vec<u8>) -> Option<Vec<u8>> {
        self.insert_vec(key.into(), value)
    }

    /// [`MetaMap::insert`] once, not once per key type (code size).
    fn insert_vec(&mut self, key: Vec<u8>, value: Vec<u8>) -> Option<Vec<u8>> {
        match self.find(&key) {
            Ok(i) => Some(core::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Vec<u8>> {
        let i = self.find(key.as_bytes()).ok()?;
        Some(self.0.remove(i).1)
    }

    pub fn get(&self, key: &str) -> Option<&Vec<u8>> {
        self.find(key.as_bytes()).ok().map(|i| &self.0[i].1)
    }

    /// Keys that are UTF-8 (every key written through the API is).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter_map(|(k, _)| core::str::from_utf8(k).ok())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Payload pieces of a SET record: key length, key, value.
pub(crate) fn set_payload<'a>(klen: &'a [u8; 1], key: &'a str, value: &'a [u8]) -> [&'a [u8]; 3] {
    [klen, key.as_bytes(), value]
}

/// The SNAPSHOT payload of a whole map.
pub(crate) fn snapshot_payload(map: &MetaMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(snapshot_len(map));
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (k, v) in map.iter() {
        // Key length and value length: one 5-byte piece (less code).
        let mut lens = [k.len() as u8, 0, 0, 0, 0];
        lens[1..].copy_from_slice(&(v.len() as u32).to_le_bytes());
        for piece in [&lens[..], k, v] {
            out.extend_from_slice(piece);
        }
    }
    out
}

/// Length of [`snapshot_payload`] without building it.
pub(crate) fn snapshot_len(map: &MetaMap) -> usize {
    4 + map
        .iter()
        .map(|(k, v)| 5 + k.len() + v.len())
        .sum::<usize>()
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Some(head)
}

/// A key: its length byte, then its bytes.
fn take_key<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let klen = *take(b, 1)?.first()? as usize;
    take(b, klen)
}

fn take_u32(b: &mut &[u8]) -> Option<u32> {
    let mut a = [0u8; 4];
    a.copy_from_slice(take(b, 4)?);
    Some(u32::from_le_bytes(a))
}

/// Applies one meta record to `map`. `false` if the payload is malformed
/// (then the record counts as invalid and replay stops before it).
pub(crate) fn apply(map: &mut MetaMap, kind: Kind, mut p: &[u8]) -> bool {
    match kind {
        Kind::Set => {
            let Some(key) = take_key(&mut p) else {
                return false;
            };
            map.insert_vec(key.to_vec(), p.to_vec());
            true
        }
        Kind::Remove => {
            let Some(key) = take_key(&mut p).filter(|_| p.is_empty()) else {
                return false;
            };
            if let Ok(i) = map.find(key) {
                map.0.remove(i);
            }
            true
        }
        Kind::Snapshot => match snapshot(p) {
            Some(fresh) => {
                *map = fresh;
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// The map a SNAPSHOT payload holds: a count, then per key its length
/// byte, the value's length (u32), the key and the value; `None` if
/// malformed (short, or bytes left over).
fn snapshot(mut p: &[u8]) -> Option<MetaMap> {
    let count = take_u32(&mut p)?;
    let mut fresh = MetaMap::new();
    for _ in 0..count {
        let klen = take(&mut p, 1)?[0] as usize;
        let vlen = take_u32(&mut p)? as usize;
        let key = take(&mut p, klen)?.to_vec();
        let value = take(&mut p, vlen)?.to_vec();
        fresh.insert_vec(key, value);
    }
    p.is_empty().then_some(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trip_and_malformed_payloads() {
        let mut m = MetaMap::new();
        m.insert("term", b"7".to_vec());
        m.insert("vote", b"n1".to_vec());
        let s = snapshot_payload(&m);
        assert_eq!(s.len(), snapshot_len(&m));
        let mut back = MetaMap::new();
        assert!(apply(&mut back, Kind::Snapshot, &s));
        assert_eq!(back, m);
        assert!(!apply(&mut back, Kind::Snapshot, &s[..s.len() - 1]));
        assert!(!apply(&mut back, Kind::Set, &[5, b'a']));
        // Bytes after a REMOVE's key, or after a snapshot's last value, or a
        // count above the keys present: malformed, the map is untouched.
        assert!(!apply(
            &mut back,
            Kind::Remove,
            &[4, b't', b'e', b'r', b'm', 0]
        ));
        let mut long = s.clone();
        long.push(0);
        assert!(!apply(&mut back, Kind::Snapshot, &long));
        let mut more = s.clone();
        more[0] += 1;
        assert!(!apply(&mut back, Kind::Snapshot, &more));
        assert_eq!(back, m);
        assert!(apply(&mut back, Kind::Remove, &[4, b't', b'e', b'r', b'm']));
        assert!(back.get("term").is_none());
        assert!(apply(&mut back, Kind::Remove, &[4, b't', b'e', b'r', b'm']));
        assert!(apply(
            &mut back,
            Kind::Set,
            &[4, b't', b'e', b'r', b'm', b'9']
        ));
        assert_eq!(back.get("term").map(|v| &v[..]), Some(&b"9"[..]));
        assert!(!apply(&mut back, Kind::Mark, &[]));
    }
}
