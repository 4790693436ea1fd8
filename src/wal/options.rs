//! `WalOptions`: the tuning knobs, with defaults for servers and for
//! microcontrollers.

/// Tuning knobs; [`WalOptions::default`] needs no changes for most uses.
///
/// Build it from [`WalOptions::default`] (or [`WalOptions::large`] /
/// [`WalOptions::small`]) and the builder methods, e.g.
/// `WalOptions::default().cache_bytes(1 << 20)`: fields may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalOptions {
    /// Most bytes of recent entries kept in memory for reads.
    pub cache_bytes: usize,
    /// Most recent entries kept in memory for reads.
    pub cache_entries: usize,
    /// Appended bytes buffered before they are programmed without a sync.
    pub write_buffer: usize,
    /// Read-ahead window used when scanning blocks at open.
    pub read_window: usize,
    /// Most blocks added by one growth of a growable device.
    pub max_grow_blocks: u32,
}

impl WalOptions {
    /// Sized for servers, desktops and browsers: the `std` default.
    pub const fn large() -> Self {
        WalOptions {
            cache_bytes: 16 << 20,
            cache_entries: usize::MAX,
            write_buffer: 256 << 10,
            read_window: 64 << 10,
            max_grow_blocks: 64,
        }
    }

    /// Sized for microcontrollers: the default without `std`.
    pub const fn small() -> Self {
        WalOptions {
            cache_bytes: 2 << 10,
            cache_entries: 64,
            write_buffer: 1 << 10,
            read_window: 256,
            max_grow_blocks: 4,
        }
    }

    /// Sets [`WalOptions::cache_bytes`]: most bytes of recent entries kept in memory for reads.
    #[must_use]
    pub const fn cache_bytes(mut self, v: usize) -> Self {
        self.cache_bytes = v;
        self
    }

    /// Sets [`WalOptions::cache_entries`]: most recent entries kept in memory for reads.
    #[must_use]
    pub const fn cache_entries(mut self, v: usize) -> Self {
        self.cache_entries = v;
        self
    }

    /// Sets [`WalOptions::write_buffer`]: appended bytes buffered before they are programmed without a sync.
    #[must_use]
    pub const fn write_buffer(mut self, v: usize) -> Self {
        self.write_buffer = v;
        self
    }

    /// Sets [`WalOptions::read_window`]: read-ahead window used when scanning blocks at open.
    #[must_use]
    pub const fn read_window(mut self, v: usize) -> Self {
        self.read_window = v;
        self
    }

    /// Sets [`WalOptions::max_grow_blocks`]: most blocks added by one growth of a growable device.
    #[must_use]
    pub const fn max_grow_blocks(mut self, v: u32) -> Self {
        self.max_grow_blocks = v;
        self
    }
}

impl Default for WalOptions {
    fn default() -> Self {
        if cfg!(feature = "std") {
            Self::large()
        } else {
            Self::small()
        }
    }
}
