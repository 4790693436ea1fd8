//! The bytes the raft-rs store keeps: entries (one per log index), the
//! durable state (one metadata value) and snapshot data (metadata values).
//!
//! A compact encoding of our own rather than raft's protobuf: the log index is
//! already the WAL's index (not stored twice), the term sits right after the
//! version byte (`term(idx)` decodes two fields), and the bytes on the device
//! do not depend on which codec (`protobuf-codec` or `prost-codec`) the
//! application builds raft with. Every value starts with a format version.

use alloc::vec;
use alloc::vec::Vec;

use raft::eraftpb::{ConfState, Entry, EntryType, HardState, SnapshotMetadata};

/// Format version of every value below.
const V1: u8 = 1;

/// Why stored bytes did not decode.
pub(crate) type Bad = &'static str;

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A reader over stored bytes; every read is bounds-checked.
struct Rd<'a>(&'a [u8]);

impl<'a> Rd<'a> {
    fn u8(&mut self) -> Result<u8, Bad> {
        let (&b, rest) = self.0.split_first().ok_or("truncated value")?;
        self.0 = rest;
        Ok(b)
    }

    fn u64(&mut self) -> Result<u64, Bad> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes")
    }

    fn bytes(&mut self) -> Result<&'a [u8], Bad> {
        let n = usize::try_from(self.u64()?).map_err(|_| "length too large")?;
        if n > self.0.len() {
            return Err("length past the end of the value");
        }
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(b)
    }

    fn version(&mut self) -> Result<(), Bad> {
        match self.u8()? {
            V1 => Ok(()),
            _ => Err("unknown format version (written by a newer blockwal?)"),
        }
    }

    fn end(&self) -> Result<(), Bad> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes after the value")
        }
    }
}

fn entry_type(b: u8) -> Result<EntryType, Bad> {
    Ok(match b {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        _ => return Err("unknown entry type"),
    })
}

/// `[version][type][term][data len][data][context]`.
pub(crate) fn encode_entry(e: &Entry, out: &mut Vec<u8>) {
    out.clear();
    out.push(V1);
    out.push(e.entry_type as u8);
    put(out, e.term);
    put(out, e.data.len() as u64);
    out.extend_from_slice(&e.data);
    out.extend_from_slice(&e.context);
}

/// The term of an encoded entry (without decoding the rest).
pub(crate) fn entry_term(b: &[u8]) -> Result<u64, Bad> {
    let mut r = Rd(b);
    r.version()?;
    entry_type(r.u8()?)?;
    r.u64()
}

/// Decodes an entry stored at `index`.
pub(crate) fn decode_entry(index: u64, b: &[u8]) -> Result<Entry, Bad> {
    let mut r = Rd(b);
    r.version()?;
    let mut e = Entry::default();
    e.entry_type = entry_type(r.u8()?)?;
    e.term = r.u64()?;
    e.index = index;
    e.data = r.bytes()?.to_vec().into();
    e.context = r.0.to_vec().into();
    Ok(e)
}

fn put_ids(out: &mut Vec<u8>, ids: &[u64]) {
    put(out, ids.len() as u64);
    for &id in ids {
        put(out, id);
    }
}

fn get_ids(r: &mut Rd<'_>) -> Result<Vec<u64>, Bad> {
    let n = r.u64()?;
    // Each id takes at least one byte: bounds the allocation by the value.
    if n > r.0.len() as u64 {
        return Err("id count past the end of the value");
    }
    (0..n).map(|_| r.u64()).collect()
}

fn put_cs(out: &mut Vec<u8>, cs: &ConfState) {
    put_ids(out, &cs.voters);
    put_ids(out, &cs.learners);
    put_ids(out, &cs.voters_outgoing);
    put_ids(out, &cs.learners_next);
    out.push(u8::from(cs.auto_leave));
}

fn get_cs(r: &mut Rd<'_>) -> Result<ConfState, Bad> {
    let mut cs = ConfState::default();
    cs.voters = get_ids(r)?;
    cs.learners = get_ids(r)?;
    cs.voters_outgoing = get_ids(r)?;
    cs.learners_next = get_ids(r)?;
    cs.auto_leave = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err("auto_leave is not 0 or 1"),
    };
    Ok(cs)
}

/// Everything durable besides the entries, written as one metadata value so
/// that a crash leaves all of it old or all of it new.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct State {
    /// The last hard state saved.
    pub hs: HardState,
    /// The last conf state saved.
    pub cs: ConfState,
    /// Metadata of the last snapshot created or applied (index 0: none).
    pub snap: SnapshotMetadata,
    /// Which data slot holds that snapshot's data.
    pub slot: u8,
    /// The entry before the first one in the log (index and term); the log
    /// is compacted (or will be, after a crash, at open) through it.
    pub base_index: u64,
    /// Its term.
    pub base_term: u64,
}

pub(crate) fn encode_state(s: &State) -> Vec<u8> {
    let mut out = vec![V1];
    put(&mut out, s.hs.term);
    put(&mut out, s.hs.vote);
    put(&mut out, s.hs.commit);
    put_cs(&mut out, &s.cs);
    put(&mut out, s.snap.index);
    put(&mut out, s.snap.term);
    put_cs(&mut out, s.snap.get_conf_state());
    out.push(s.slot);
    put(&mut out, s.base_index);
    put(&mut out, s.base_term);
    out
}

pub(crate) fn decode_state(b: &[u8]) -> Result<State, Bad> {
    let mut r = Rd(b);
    r.version()?;
    let mut s = State::default();
    s.hs.term = r.u64()?;
    s.hs.vote = r.u64()?;
    s.hs.commit = r.u64()?;
    s.cs = get_cs(&mut r)?;
    s.snap.index = r.u64()?;
    s.snap.term = r.u64()?;
    s.snap.set_conf_state(get_cs(&mut r)?);
    s.slot = r.u8()?;
    if s.slot > 1 {
        return Err("snapshot slot is not 0 or 1");
    }
    s.base_index = r.u64()?;
    s.base_term = r.u64()?;
    r.end()?;
    Ok(s)
}

/// Snapshot data with the index and term it belongs to: `[version][index][term][data]`.
pub(crate) fn encode_snap_data(index: u64, term: u64, data: &[u8]) -> Vec<u8> {
    let mut out = vec![V1];
    put(&mut out, index);
    put(&mut out, term);
    out.extend_from_slice(data);
    out
}

/// Index, term and data of a stored snapshot.
pub(crate) fn decode_snap_data(b: &[u8]) -> Result<(u64, u64, &[u8]), Bad> {
    let mut r = Rd(b);
    r.version()?;
    let index = r.u64()?;
    let term = r.u64()?;
    Ok((index, term, r.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_reject_garbage() {
        let mut e = Entry::default();
        e.entry_type = EntryType::EntryConfChangeV2;
        e.term = u64::MAX;
        e.index = 7;
        e.data = b"data".to_vec().into();
        e.context = b"ctx".to_vec().into();
        let mut b = Vec::new();
        encode_entry(&e, &mut b);
        assert_eq!(decode_entry(7, &b), Ok(e.clone()));
        assert_eq!(entry_term(&b), Ok(u64::MAX));
        for n in 0..b.len() - 3 {
            // Cut before the end of the data: refused, never a panic.
            assert!(decode_entry(7, &b[..n]).is_err(), "prefix {n}");
        }
        b[1] = 9;
        assert_eq!(decode_entry(7, &b), Err("unknown entry type"));
        b[0] = 2;
        assert!(decode_entry(7, &b).is_err());
    }

    #[test]
    fn state_round_trips_and_prefixes_fail() {
        let mut s = State::default();
        s.hs.term = 5;
        s.hs.vote = 2;
        s.hs.commit = 300;
        s.cs.voters = vec![1, 2, 3];
        s.cs.learners_next = vec![4];
        s.cs.auto_leave = true;
        s.snap.index = 200;
        s.snap.term = 4;
        s.snap.mut_conf_state().voters = vec![1, 2];
        s.slot = 1;
        s.base_index = 150;
        s.base_term = 3;
        let b = encode_state(&s);
        assert_eq!(decode_state(&b), Ok(s));
        for n in 0..b.len() {
            assert!(decode_state(&b[..n]).is_err(), "prefix {n}");
        }
        let mut long = b.clone();
        long.push(0);
        assert!(decode_state(&long).is_err());
        // A huge id count is refused before anything is allocated.
        assert!(decode_state(&[V1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    proptest::proptest! {
        /// Any stored bytes decode or are refused, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode_entry(1, &b);
            let _ = entry_term(&b);
            let _ = decode_state(&b);
            let _ = decode_snap_data(&b);
            let mut v = vec![V1];
            v.extend_from_slice(&b);
            let _ = decode_state(&v);
        }
    }

    #[test]
    fn snapshot_data_round_trips() {
        let b = encode_snap_data(9, 2, b"kv");
        assert_eq!(decode_snap_data(&b), Ok((9, 2, &b"kv"[..])));
        assert!(decode_snap_data(&b[..1]).is_err());
    }
}
