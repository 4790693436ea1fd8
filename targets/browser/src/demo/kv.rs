//! The demo's state machine: a key-value map fed by committed entries.
//!
//! A `put` travels in an entry's data as `request id (u64 LE) | key length
//! (u32 LE) | key | value`; the request id lets the proposing worker
//! acknowledge the write once it has applied it.

use std::collections::BTreeMap;

/// One `put key=value`, with the id of the page's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put {
    /// The page's request id (acknowledged once applied).
    pub req: u64,
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

impl Put {
    /// The bytes carried in an entry's data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.key.len() + self.value.len());
        out.extend_from_slice(&self.req.to_le_bytes());
        out.extend_from_slice(&(self.key.len() as u32).to_le_bytes());
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(self.value.as_bytes());
        out
    }

    /// Parses an entry's data; `None` for anything that is not a `put`
    /// (the empty entry a new leader appends, or damaged bytes).
    pub fn decode(data: &[u8]) -> Option<Put> {
        let req = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
        let klen = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?) as usize;
        let key = data.get(12..12usize.checked_add(klen)?)?;
        let value = &data[12 + klen..];
        Some(Put {
            req,
            key: String::from_utf8(key.to_vec()).ok()?,
            value: String::from_utf8(value.to_vec()).ok()?,
        })
    }
}

/// The replicated map.
#[derive(Default, Debug)]
pub struct Kv {
    map: BTreeMap<String, String>,
}

impl Kv {
    /// Applies a put.
    pub fn apply(&mut self, put: &Put) {
        self.map.insert(put.key.clone(), put.value.clone());
    }

    /// A value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every key and value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
