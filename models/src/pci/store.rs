//! Device interrupt-message stores: MSI, the MSI-X table, and IMS (Interrupt Message Store)
//! in device memory or in queue memory. All hold (address, data, mask) per interrupt; they
//! differ in how many entries a function may have, whether a hypervisor can trap writes to
//! them, and how long an update takes to land.
//!
//! # What is modelled
//! - **MSI**: 1–32 vectors per function (Multiple Message Capable is a 3-bit log2 field);
//!   multi-vector MSI on x86 needs interrupt remapping, the caller falls back to one shared
//!   vector without it. One address, consecutive data values.
//! - **MSI-X**: up to 2,048 entries per function, each with its own mask bit and pending bit.
//! - **IMS in device memory** (IDXD-like): slots of the same 16-byte layout as an MSI-X entry,
//!   in device MMIO, so a hypervisor can trap writes; the slot array belongs to the device
//!   and is shared by its functions and ADIs (up to 63 × 256 = 16,128).
//! - **IMS in queue memory** (mlx5-like): messages in host memory, written through a device
//!   command queue with its own latency; cannot be trapped.
//! - MSI and MSI-X's Pending Bit Array: a raise on a masked entry sets its pending bit;
//!   further raises merge into it; unmasking sends the message once.
//! - IMS has no architected pending bit (the IDXD IMS irq_chip of Thomas Gleixner's IMS series,
//!   `pci_intel_idxd_create_ims_domain`, has mask, unmask and message writes, and nothing
//!   that reads or replays a pending state: docs/sources.md#ims-no-pba): what a raise on a masked slot does is the
//!   device's own, [`ImsMaskedRaise`]: dropped (the default: nothing in the architecture
//!   keeps it) or latched by the device and sent once at unmask, as a PBA would.
//! - The function's MSI-X Enable bit: while it is clear (VFIO disables MSI-X to resize a
//!   table on a host without dynamic MSI-X) the function sends no message and a raise is
//!   dropped; clearing it drops the pending bits too. A store starts enabled.
//!
//! # What is not modelled (and why)
//! The function-level mask, and MSI's optional per-vector masking capability (every MSI
//! vector is maskable here, which is the common case on modern devices).
//!
//! # Parameters and their sources
//! - 32 MSI vectors, 2,048 MSI-X entries: include/uapi/linux/pci_regs.h
//!   (docs/sources.md#msi-vectors, docs/sources.md#msi-x-table-size).
//! - 16,128 IMS slots: IDXD GENCAP `max_ims_mult` (6 bits) × 256 (docs/sources.md#ims-slots).
//! - IMS queue-memory update latency: no published figure; a scenario parameter
//!   (docs/sources.md#ims-queue-update).

/// Most vectors one MSI capability can have.
pub const MSI_VECTORS_MAX: u32 = 32;
/// Most entries one MSI-X table can have (PCI_MSIX_FLAGS_QSIZE + 1).
pub const MSIX_TABLE_ENTRIES_MAX: u32 = 2048;
/// Most IMS slots an IDXD device can report (63 × 256).
pub const IMS_DEVICE_SLOTS_MAX: u32 = 63 * 256;

/// Where a device keeps its interrupt messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// PCI MSI capability (1–32 vectors).
    Msi,
    /// PCI MSI-X table (up to 2,048 entries).
    Msix,
    /// IMS in device memory (trappable).
    ImsDevice,
    /// IMS in host queue memory (not trappable; updated through a command queue).
    ImsQueue,
}

impl StoreKind {
    /// Most entries one function's store of this kind may have (`None`: bounded only by the
    /// device's slot pool or host memory).
    pub fn entries_max(self) -> Option<u32> {
        match self {
            StoreKind::Msi => Some(MSI_VECTORS_MAX),
            StoreKind::Msix => Some(MSIX_TABLE_ENTRIES_MAX),
            StoreKind::ImsDevice => Some(IMS_DEVICE_SLOTS_MAX),
            StoreKind::ImsQueue => None,
        }
    }

    /// Whether a hypervisor can trap the guest's writes to the store (device MMIO).
    pub fn trappable(self) -> bool {
        !matches!(self, StoreKind::ImsQueue)
    }

    /// Stable name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Msi => "msi",
            StoreKind::Msix => "msix",
            StoreKind::ImsDevice => "ims_device",
            StoreKind::ImsQueue => "ims_queue",
        }
    }
}

/// What an IMS device does with a raise on a masked slot (IMS has no architected pending
/// bit; MSI and MSI-X always latch it in their pending bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImsMaskedRaise {
    /// Dropped: the interrupt is lost (counted). What a device without a pending state of
    /// its own does; the default, since nothing in the architecture keeps the raise.
    #[default]
    Drop,
    /// Latched in a device-specific pending state, merged with later raises and sent once at
    /// unmask (PBA-like, but not visible to software).
    Latch,
}

impl ImsMaskedRaise {
    /// Stable name for reports and scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            ImsMaskedRaise::Drop => "drop",
            ImsMaskedRaise::Latch => "latch",
        }
    }
}

/// One store entry (an MSI vector, an MSI-X entry or an IMS slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreEntry {
    /// Message address (address high:low).
    pub address: u64,
    /// Message data.
    pub data: u32,
    /// Vector-control mask bit.
    pub masked: bool,
    /// Pending: a raise happened while masked (MSI-X's PBA bit; an IMS device's own latch).
    pub pending: bool,
}

/// What a raise on an entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raise {
    /// Unmasked: the message is written now.
    Send,
    /// Masked: the pending bit is set; the message goes out at unmask.
    Pending,
    /// Masked with the pending bit already set: merged into it.
    Merged,
    /// The function's MSI-X is disabled: the raise is dropped.
    Dropped,
    /// A masked IMS slot of a device that keeps no pending state ([`ImsMaskedRaise::Drop`]):
    /// the raise is dropped.
    MaskedDropped,
}

/// The interrupt-message store of one function (or one ADI's share of an IMS).
#[derive(Debug, Clone)]
pub struct MessageStore {
    kind: StoreKind,
    entries: Vec<StoreEntry>,
    /// The MSI-X Enable bit is clear: no message is sent, raises are dropped.
    disabled: bool,
    /// A raise on a masked entry is latched (MSI, MSI-X, an IMS device that latches).
    latches: bool,
}

impl MessageStore {
    /// A store of `entry_count` masked, empty entries (the reset state); an IMS store's
    /// masked raises are dropped (see [`MessageStore::with_ims_masked_raise`]).
    pub fn new(kind: StoreKind, entry_count: u32) -> MessageStore {
        MessageStore::with_ims_masked_raise(kind, entry_count, ImsMaskedRaise::Drop)
    }

    /// A store of `entry_count` masked, empty entries whose IMS device does `ims` with a raise
    /// on a masked slot (ignored for MSI and MSI-X: their pending bit always latches).
    pub fn with_ims_masked_raise(kind: StoreKind, entry_count: u32, ims: ImsMaskedRaise) -> MessageStore {
        assert!(
            entry_count >= 1 && kind.entries_max().is_none_or(|max| entry_count <= max),
            "{} store of {entry_count} entries: validation should have caught it",
            kind.as_str()
        );
        MessageStore {
            kind,
            entries: vec![StoreEntry { masked: true, ..StoreEntry::default() }; entry_count as usize],
            disabled: false,
            latches: matches!(kind, StoreKind::Msi | StoreKind::Msix) || ims == ImsMaskedRaise::Latch,
        }
    }

    /// The store's kind.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// Number of entries.
    pub fn len(&self) -> u32 {
        self.entries.len() as u32
    }

    /// Always false: a store has at least one entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry `index`.
    pub fn entry(&self, index: u32) -> StoreEntry {
        self.entries[index as usize]
    }

    /// Writes a message into entry `index`, leaving its mask and pending bits alone (what
    /// `pci_write_msi_msg` does).
    pub fn write_message(&mut self, index: u32, address: u64, data: u32) {
        let entry = &mut self.entries[index as usize];
        entry.address = address;
        entry.data = data;
    }

    /// Sets the mask bit of entry `index`.
    pub fn mask(&mut self, index: u32) {
        self.entries[index as usize].masked = true;
    }

    /// Clears the mask bit of entry `index`; returns whether a pending message must be sent
    /// now (the pending bit was set; it is cleared).
    pub fn unmask(&mut self, index: u32) -> bool {
        let entry = &mut self.entries[index as usize];
        entry.masked = false;
        std::mem::take(&mut entry.pending)
    }

    /// Clears the function's MSI-X Enable bit: from now on raises are dropped, and the
    /// pending bits set so far are cleared. Returns how many were (their interrupts are lost).
    pub fn disable(&mut self) -> u32 {
        self.disabled = true;
        let mut cleared = 0;
        for entry in &mut self.entries {
            cleared += u32::from(std::mem::take(&mut entry.pending));
        }
        cleared
    }

    /// Whether the function's MSI-X Enable bit is clear (raises are dropped).
    #[inline]
    pub fn disabled(&self) -> bool {
        self.disabled
    }

    /// Sets the MSI-X Enable bit again (the entries keep their mask bits).
    pub fn enable(&mut self) {
        self.disabled = false;
    }

    /// The device raises entry `index`.
    pub fn raise(&mut self, index: u32) -> Raise {
        if self.disabled {
            return Raise::Dropped;
        }
        let entry = &mut self.entries[index as usize];
        match (entry.masked, entry.pending) {
            (false, _) => Raise::Send,
            (true, _) if !self.latches => Raise::MaskedDropped,
            (true, false) => {
                entry.pending = true;
                Raise::Pending
            }
            (true, true) => Raise::Merged,
        }
    }

    /// The function's MSI-X table takes over from its IMS (a guest driver's fallback): from
    /// now on a masked raise sets a pending bit.
    pub fn use_pending_bits(&mut self) {
        self.latches = true;
    }

    /// Whether a raise on a masked entry is kept (a pending bit or the device's latch).
    pub fn latches(&self) -> bool {
        self.latches
    }

    /// Entries whose pending bit is set.
    pub fn pending_count(&self) -> u32 {
        self.entries.iter().filter(|e| e.pending).count() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_raises_set_one_pending_bit_sent_at_unmask() {
        let mut t = MessageStore::new(StoreKind::Msix, 2);
        assert!(t.entry(0).masked, "entries start masked");
        assert_eq!(t.raise(0), Raise::Pending);
        assert_eq!(t.raise(0), Raise::Merged);
        assert_eq!(t.pending_count(), 1);
        t.write_message(0, 0xFEE0_0000, 0x30);
        assert!(t.entry(0).masked, "writing a message does not unmask");
        assert!(t.unmask(0), "the pending message goes out at unmask");
        assert_eq!(t.pending_count(), 0);
        assert_eq!(t.raise(0), Raise::Send);
        assert!(!t.unmask(1), "nothing pending on entry 1");
    }

    #[test]
    fn a_disabled_function_drops_raises_and_its_pending_bits() {
        let mut t = MessageStore::new(StoreKind::Msix, 3);
        assert_eq!(t.raise(0), Raise::Pending);
        assert_eq!(t.raise(1), Raise::Pending);
        assert_eq!(t.disable(), 2, "both pending bits are cleared");
        assert_eq!(t.raise(0), Raise::Dropped);
        assert_eq!(t.pending_count(), 0);
        t.enable();
        assert_eq!(t.raise(0), Raise::Pending, "enabled again, a masked entry holds its raise");
    }

    #[test]
    fn kinds_have_their_limits() {
        assert_eq!(StoreKind::Msi.entries_max(), Some(32));
        assert_eq!(StoreKind::Msix.entries_max(), Some(2048));
        assert_eq!(StoreKind::ImsDevice.entries_max(), Some(16_128));
        assert_eq!(StoreKind::ImsQueue.entries_max(), None);
        assert!(StoreKind::ImsDevice.trappable() && !StoreKind::ImsQueue.trappable());
        assert!(std::panic::catch_unwind(|| MessageStore::new(StoreKind::Msi, 33)).is_err());
        assert_eq!(MessageStore::new(StoreKind::ImsQueue, 100_000).len(), 100_000);
    }

    #[test]
    fn ims_borrows_no_pending_bit_unless_the_device_latches() {
        for kind in [StoreKind::ImsDevice, StoreKind::ImsQueue] {
            // The default: every raise on a masked slot is dropped, none is sent at unmask.
            let mut t = MessageStore::new(kind, 2);
            assert!(!t.latches());
            assert_eq!(t.raise(0), Raise::MaskedDropped);
            assert_eq!(t.raise(0), Raise::MaskedDropped);
            assert_eq!(t.pending_count(), 0);
            assert!(!t.unmask(0), "nothing was kept to send");
            assert_eq!(t.raise(0), Raise::Send);
            // A device that latches: one pending state, merged, sent once.
            let mut t = MessageStore::with_ims_masked_raise(kind, 2, ImsMaskedRaise::Latch);
            assert_eq!((t.raise(1), t.raise(1)), (Raise::Pending, Raise::Merged));
            assert!(t.unmask(1));
            assert!(!t.unmask(1));
        }
        // MSI and MSI-X latch whatever the IMS setting says.
        for kind in [StoreKind::Msi, StoreKind::Msix] {
            let mut t = MessageStore::with_ims_masked_raise(kind, 1, ImsMaskedRaise::Drop);
            assert_eq!(t.raise(0), Raise::Pending);
        }
    }
}
