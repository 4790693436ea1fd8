//! The chain walk's rules (FORMAT.md, "Opening a log", step 3), each a small
//! pure function over what the walk knows of two adjacent blocks: `N`, the
//! newer block (its header), and `O`, its predecessor (its [`View`]).

use crate::format::{BlockHeader, FLAG_CONT, SEQ_LIMIT};

/// What the walk needs of one log block, from its summary or its scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct View {
    /// Index after the block's last entry (before dropping an unfinished one).
    pub next: u64,
    /// min(base, TRUNCATE indices).
    pub low: u64,
    /// max(header floor, COMPACT indices).
    pub floor: u64,
    /// The last entry continues in the next block.
    pub tail_open: bool,
    /// Offset where the block's records end.
    pub end: u32,
}

/// A rule's verdict: the words of the corruption it found.
pub(crate) type Verdict = Result<(), &'static str>;

/// Headers: `seq` below the limit, and (log) `floor <= base` (R4: the
/// writer's next index is never below its first index).
pub(crate) fn header_rule(h: &BlockHeader) -> Verdict {
    if h.seq >= SEQ_LIMIT {
        return Err("sequence number out of range (at or above 2^63)");
    }
    if h.floor > h.base {
        return Err("block header floor above its base");
    }
    Ok(())
}

/// R1: a link points to an older block.
pub(crate) fn link_rule(n: &BlockHeader) -> Verdict {
    if n.prev >= n.seq {
        return Err("chain link does not point to an older block");
    }
    Ok(())
}

/// R2's verdict when it holds or names a droppable head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// `O` ends where `N` says.
    Ok,
    /// `N` is a head header whose sync never completed: drop it.
    DropHead,
}

/// R2: `O`'s records end exactly at `N.prev_end`; short of it only when `N`
/// is the head and holds no valid record (a crash kept its header and lost
/// `O`'s unsynced records).
pub(crate) fn end_rule(
    o_end: u32,
    n: &BlockHeader,
    n_is_head: bool,
    n_holds_records: bool,
) -> Result<End, &'static str> {
    if o_end == n.prev_end {
        Ok(End::Ok)
    } else if o_end < n.prev_end && n_is_head && !n_holds_records {
        Ok(End::DropHead)
    } else if o_end < n.prev_end {
        Err("records end before the point the next block of the log says they reached")
    } else {
        Err("records run past the point the next block of the log says they ended")
    }
}

/// R3: `O` ends at `N.base` (less its unfinished last entry unless `N`
/// continues it); a `CONT` block continues an open entry.
pub(crate) fn base_rule(o: &View, n: &BlockHeader) -> Verdict {
    let cont = n.flags & FLAG_CONT != 0;
    if cont && !o.tail_open {
        return Err("next block continues an entry this block does not start");
    }
    let ends = if o.tail_open && !cont {
        o.next.saturating_sub(1)
    } else {
        o.next
    };
    if ends != n.base {
        return Err("this block does not end where the next one of the log begins");
    }
    Ok(())
}

/// R4: floors only grow along the chain.
pub(crate) fn floor_rule(o: &View, n: &BlockHeader) -> Verdict {
    if o.floor > n.floor {
        return Err("first index goes down along the chain");
    }
    Ok(())
}

/// R5: `O`'s last surviving entry is one below the newer blocks' first.
pub(crate) fn gap_rule(o_n: u32, o_end_index: u64, need_next: u64) -> Verdict {
    if o_n > 0 && o_end_index != need_next {
        return Err("gap between this block and the next one of the log");
    }
    Ok(())
}

/// R6: the head has no trusted summary.
pub(crate) fn head_rule(summary_trusted: bool) -> Verdict {
    if summary_trusted {
        return Err("the newest log block is missing (its predecessor is sealed)");
    }
    Ok(())
}

/// The walk stops when the entries still needed are all below the floor,
/// or at the first block ever.
pub(crate) fn walk_done(need_next: u64, floor: u64, prev: u64) -> bool {
    need_next <= floor || prev == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::KIND_LOG;

    fn hdr(seq: u64, prev: u64, base: u64, floor: u64, prev_end: u32, cont: bool) -> BlockHeader {
        BlockHeader {
            kind: KIND_LOG,
            flags: if cont { FLAG_CONT } else { 0 },
            seq,
            prev,
            base,
            floor,
            prev_end,
            block_size: 512,
        }
    }

    fn view(next: u64, floor: u64, tail_open: bool, end: u32) -> View {
        View {
            next,
            low: 1,
            floor,
            tail_open,
            end,
        }
    }

    #[test]
    fn header_rule_table() {
        let cases = [
            (hdr(5, 4, 10, 3, 0, false), true),
            (hdr(5, 4, 10, 10, 0, false), true),
            // Hostile image (a): floor 1000 above base 5.
            (hdr(7, 0, 5, 1000, 0, false), false),
            (hdr(SEQ_LIMIT - 1, 4, 1, 1, 0, false), true),
            (hdr(u64::MAX - 1, 4, 1, 1, 0, false), false),
        ];
        for (h, ok) in cases {
            assert_eq!(header_rule(&h).is_ok(), ok, "{h:?}");
        }
    }

    #[test]
    fn link_rule_table() {
        for (seq, prev, ok) in [(5, 4, true), (5, 0, true), (5, 5, false), (5, 6, false)] {
            assert_eq!(link_rule(&hdr(seq, prev, 1, 1, 0, false)).is_ok(), ok);
        }
    }

    #[test]
    fn end_rule_table() {
        let n = hdr(9, 8, 20, 1, 300, false);
        let cases = [
            (300, false, true, Ok(End::Ok)),
            (300, true, true, Ok(End::Ok)),
            (200, true, false, Ok(End::DropHead)),
            (200, true, true, Err(())),
            (200, false, false, Err(())),
            (400, true, false, Err(())),
        ];
        for (end, head, holds, want) in cases {
            let got = end_rule(end, &n, head, holds).map_err(|_| ());
            assert_eq!(got, want, "end {end} head {head} holds {holds}");
        }
    }

    #[test]
    fn base_rule_table() {
        let plain = hdr(9, 8, 20, 1, 0, false);
        let cont = hdr(9, 8, 20, 1, 0, true);
        let cases = [
            (view(20, 1, false, 0), plain, true),
            (view(19, 1, false, 0), plain, false),
            (view(21, 1, false, 0), plain, false),
            // Unfinished entry 20, dropped: the next block starts at 20.
            (view(21, 1, true, 0), plain, true),
            (view(20, 1, true, 0), cont, true),
            (view(20, 1, false, 0), cont, false),
            (view(21, 1, true, 0), cont, false),
        ];
        for (o, n, ok) in cases {
            assert_eq!(base_rule(&o, &n).is_ok(), ok, "{o:?} {n:?}");
        }
    }

    #[test]
    fn floor_gap_head_and_stop_tables() {
        let n = hdr(9, 8, 20, 5, 0, false);
        assert!(floor_rule(&view(20, 5, false, 0), &n).is_ok());
        assert!(floor_rule(&view(20, 6, false, 0), &n).is_err());
        for (o_n, end, need, ok) in [(0, 7, 9, true), (3, 9, 9, true), (3, 8, 9, false)] {
            assert_eq!(gap_rule(o_n, end, need).is_ok(), ok);
        }
        assert!(head_rule(false).is_ok());
        assert!(head_rule(true).is_err());
        for (need, floor, prev, done) in [(5, 5, 3, true), (6, 5, 3, false), (9, 1, 0, true)] {
            assert_eq!(walk_done(need, floor, prev), done);
        }
    }
}
