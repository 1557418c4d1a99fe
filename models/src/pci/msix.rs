//! The MSI-X table of one PCI function: up to 2,048 entries of (address, data, mask).
//!
//! # What is modelled
//! The table as the device sees it: one entry per queue, each holding the message the OS
//! composed (see `x86::msi`) and the per-entry mask bit.
//!
//! # What is not modelled (and why)
//! The Pending Bit Array and masked raises: no workload masks entries yet (the hardware
//! models issue adds them). Function-level mask: same reason.
//!
//! # Parameters and their sources
//! - 2,048 entries per function: the Table Size field is 11 bits (N−1),
//!   `PCI_MSIX_FLAGS_QSIZE 0x07FF` (include/uapi/linux/pci_regs.h; calibration.md §4).
//! - 16 bytes per entry: address low, address high, data, vector control (bit 0 = mask).

/// Most entries one MSI-X table can have (PCI_MSIX_FLAGS_QSIZE + 1).
pub const MSIX_TABLE_ENTRIES_MAX: u32 = 2048;

/// One MSI-X table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsixEntry {
    /// Message address (address high:low).
    pub address: u64,
    /// Message data.
    pub data: u32,
    /// Vector-control mask bit.
    pub masked: bool,
}

/// The MSI-X table of one function.
#[derive(Debug, Clone)]
pub struct MsixTable {
    entries: Vec<MsixEntry>,
}

impl MsixTable {
    /// A table of `entry_count` masked, empty entries (the reset state).
    pub fn new(entry_count: u32) -> MsixTable {
        assert!(
            (1..=MSIX_TABLE_ENTRIES_MAX).contains(&entry_count),
            "MSI-X table size {entry_count} outside 1..={MSIX_TABLE_ENTRIES_MAX}: validation should have caught it"
        );
        MsixTable {
            entries: vec![
                MsixEntry {
                    masked: true,
                    ..MsixEntry::default()
                };
                entry_count as usize
            ],
        }
    }

    /// Number of entries.
    pub fn len(&self) -> u32 {
        self.entries.len() as u32
    }

    /// Always false: a table has at least one entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry `index`.
    pub fn entry(&self, index: u32) -> MsixEntry {
        self.entries[index as usize]
    }

    /// Writes a message into entry `index` and unmasks it (what a driver's
    /// `pci_write_msi_msg` + unmask does).
    pub fn program(&mut self, index: u32, address: u64, data: u32) {
        self.entries[index as usize] = MsixEntry {
            address,
            data,
            masked: false,
        };
    }
}
