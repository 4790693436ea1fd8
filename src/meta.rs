//! Durable key/value metadata (term, vote, ...): the in-memory map and the
//! payloads of its SET / REMOVE / SNAPSHOT records (FORMAT.md, "Records").

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::format::Kind;

/// Longest key (its length is stored in one byte).
pub const MAX_KEY_LEN: usize = 255;

/// The map, ordered so snapshots are deterministic.
pub(crate) type MetaMap = BTreeMap<String, Vec<u8>>;

/// Payload pieces of a SET record: key length, key, value.
pub(crate) fn set_payload<'a>(klen: &'a [u8; 1], key: &'a str, value: &'a [u8]) -> [&'a [u8]; 3] {
    [klen, key.as_bytes(), value]
}

/// The SNAPSHOT payload of a whole map.
pub(crate) fn snapshot_payload(map: &MetaMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(snapshot_len(map));
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (k, v) in map {
        out.push(k.len() as u8);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v);
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

fn take_key(b: &mut &[u8]) -> Option<String> {
    let klen = *take(b, 1)?.first()? as usize;
    let key = core::str::from_utf8(take(b, klen)?).ok()?;
    Some(String::from(key))
}

/// Applies one meta record to `map`. `false` if the payload is malformed
/// (then the record counts as invalid and replay stops before it).
pub(crate) fn apply(map: &mut MetaMap, kind: Kind, mut p: &[u8]) -> bool {
    match kind {
        Kind::Set => {
            let Some(key) = take_key(&mut p) else {
                return false;
            };
            map.insert(key, p.to_vec());
            true
        }
        Kind::Remove => {
            let Some(key) = take_key(&mut p) else {
                return false;
            };
            if !p.is_empty() {
                return false;
            }
            map.remove(&key);
            true
        }
        Kind::Snapshot => {
            let mut fresh = MetaMap::new();
            let Some(count) = take(&mut p, 4) else {
                return false;
            };
            let count = u32::from_le_bytes([count[0], count[1], count[2], count[3]]);
            for _ in 0..count {
                let Some(klen) = take(&mut p, 1) else {
                    return false;
                };
                let Some(vlen) = take(&mut p, 4) else {
                    return false;
                };
                let vlen = u32::from_le_bytes([vlen[0], vlen[1], vlen[2], vlen[3]]) as usize;
                let Some(key) = take(&mut p, klen[0] as usize) else {
                    return false;
                };
                let Ok(key) = core::str::from_utf8(key) else {
                    return false;
                };
                let Some(value) = take(&mut p, vlen) else {
                    return false;
                };
                fresh.insert(String::from(key), value.to_vec());
            }
            if !p.is_empty() {
                return false;
            }
            *map = fresh;
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trip_and_malformed_payloads() {
        let mut m = MetaMap::new();
        m.insert("term".into(), b"7".to_vec());
        m.insert("vote".into(), b"n1".to_vec());
        let s = snapshot_payload(&m);
        assert_eq!(s.len(), snapshot_len(&m));
        let mut back = MetaMap::new();
        assert!(apply(&mut back, Kind::Snapshot, &s));
        assert_eq!(back, m);
        assert!(!apply(&mut back, Kind::Snapshot, &s[..s.len() - 1]));
        assert!(!apply(&mut back, Kind::Set, &[5, b'a']));
        assert!(apply(&mut back, Kind::Remove, &[4, b't', b'e', b'r', b'm']));
        assert!(!back.contains_key("term"));
    }
}
