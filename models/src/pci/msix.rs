//! The MSI-X table of one PCI function: up to 2,048 entries of (address, data, mask).
//!
//! # What is modelled
//! The table as the device sees it: one entry per queue, each holding the message the OS
//! composed (see `x86::msi`) and the per-entry mask bit.
//!
//! The Pending Bit Array: a raise on a masked entry sets the entry's pending bit instead of
//! sending; further raises while it is set merge into it; unmasking sends the message once
//! and clears the bit (PCI MSI-X "Pending Bits").
//!
//! # What is not modelled (and why)
//! The function-level mask (no scenario masks a whole function yet).
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
    /// Pending bit (PBA): a raise happened while masked.
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

    /// The device raises entry `index`.
    pub fn raise(&mut self, index: u32) -> Raise {
        let entry = &mut self.entries[index as usize];
        match (entry.masked, entry.pending) {
            (false, _) => Raise::Send,
            (true, false) => {
                entry.pending = true;
                Raise::Pending
            }
            (true, true) => Raise::Merged,
        }
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
        let mut t = MsixTable::new(2);
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
}
