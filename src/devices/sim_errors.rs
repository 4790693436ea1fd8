//! Words for [`SimError`] and [`Violation`], and the rule check's breaches
//! as violations. Kept beside `sim.rs` so the simulator's file stays the
//! simulator.

use core::fmt;

use super::sim::{SimError, SimOpKind, Violation};
use crate::device::rules::Breach;

impl From<Breach> for Violation {
    fn from(b: Breach) -> Self {
        match b {
            Breach::OutOfBounds { offset, len } => Violation::OutOfBounds { offset, len },
            Breach::Misaligned { offset, len } | Breach::CrossesBlock { offset, len } => {
                Violation::Misaligned { offset, len }
            }
            Breach::Reprogrammed { offset } => Violation::Reprogrammed { offset },
            Breach::NoSuchBlock { block } => Violation::NoSuchBlock { block },
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::OutOfBounds { offset, len } => {
                write!(
                    f,
                    "access of {len} bytes at offset {offset} is outside the device"
                )
            }
            Violation::Misaligned { offset, len } => write!(
                f,
                "program of {len} bytes at offset {offset} is not aligned to the program unit \
                 or crosses a block"
            ),
            Violation::Reprogrammed { offset } => write!(
                f,
                "program unit at offset {offset} programmed twice without an erase"
            ),
            Violation::NoSuchBlock { block } => {
                write!(f, "erase of block {block}, which the device does not have")
            }
        }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::PowerCut => write!(
                f,
                "simulated power cut: reopen the log on `SimDevice::after_crash`"
            ),
            SimError::Injected(kind) => {
                let op = match kind {
                    SimOpKind::Read => "read",
                    SimOpKind::Program => "program",
                    SimOpKind::Erase => "erase",
                    SimOpKind::Sync => "sync",
                    SimOpKind::Grow => "grow",
                };
                write!(f, "injected {op} failure")
            }
            SimError::Contract(v) => write!(f, "device contract broken: {v}"),
        }
    }
}

impl core::error::Error for Violation {}

impl core::error::Error for SimError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            SimError::Contract(v) => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn sim_errors_read_as_sentences() {
        assert_eq!(
            SimError::Injected(SimOpKind::Sync).to_string(),
            "injected sync failure"
        );
        let e = SimError::Contract(Violation::Reprogrammed { offset: 132 });
        assert_eq!(
            e.to_string(),
            "device contract broken: program unit at offset 132 programmed twice without an erase"
        );
        assert!(core::error::Error::source(&e).is_some());
        assert!(SimError::PowerCut.to_string().contains("after_crash"));
    }

    #[test]
    fn breaches_become_violations() {
        let b = Breach::CrossesBlock {
            offset: 252,
            len: 8,
        };
        assert_eq!(
            Violation::from(b),
            Violation::Misaligned {
                offset: 252,
                len: 8
            }
        );
        assert_eq!(
            Violation::from(Breach::NoSuchBlock { block: 9 }),
            Violation::NoSuchBlock { block: 9 }
        );
    }
}
