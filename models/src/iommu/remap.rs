//! VT-d interrupt remapping: the IRTE table and the lookup that turns a remappable MSI into
//! a (destination, vector) pair, or blocks it with a fault reason.
//!
//! # What is modelled
//! One table per IOMMU of up to 65,536 Interrupt Remapping Table Entries; a lookup with a
//! fixed latency; the fault outcomes of a lookup: index beyond the table (0x21), entry not
//! present (0x22) and compatibility-format interrupt blocked (0x25), each of which blocks
//! delivery and is counted.
//!
//! # What is not modelled (and why)
//! Source-id verification, the IRTE cache, fault recording registers, the global IRTE
//! update lock and IEC invalidation, posted mode: they come with the hardware models issue.
//!
//! # Parameters and their sources
//! - 65,536 entries: INTR_REMAP_TABLE_ENTRIES, drivers/iommu/intel/iommu.h (calibration.md §3).
//! - Fault reason codes: drivers/iommu/intel/dmar.c `irq_remap_fault_reasons[]`.

/// Entries in one interrupt-remapping table (Linux always allocates the maximum).
pub const INTR_REMAP_TABLE_ENTRIES: u32 = 65_536;

/// A remapped-format IRTE (the fields this model uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Irte {
    /// Destination APIC id (32 bits in x2APIC mode).
    pub dest_apic_id: u32,
    /// IDT vector delivered at the destination.
    pub vector: u8,
}

/// Why the remapping hardware blocked an interrupt request (VT-d fault reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RemapFault {
    /// 0x21: interrupt index exceeded the interrupt-remapping table size.
    IndexBeyondTable,
    /// 0x22: present bit in IRTE is clear.
    EntryNotPresent,
    /// 0x25: compatibility-format interrupt blocked.
    CompatBlocked,
}

impl RemapFault {
    /// The VT-d fault reason code.
    pub fn code(self) -> u8 {
        match self {
            RemapFault::IndexBeyondTable => 0x21,
            RemapFault::EntryNotPresent => 0x22,
            RemapFault::CompatBlocked => 0x25,
        }
    }

    /// The kernel's wording (dmar.c `irq_remap_fault_reasons`).
    pub fn reason(self) -> &'static str {
        match self {
            RemapFault::IndexBeyondTable => "Interrupt index exceeded the interrupt-remapping table size",
            RemapFault::EntryNotPresent => "Present field in the IRTE entry is clear",
            RemapFault::CompatBlocked => "Compatibility format interrupt request blocked",
        }
    }
}

/// One IOMMU's interrupt-remapping table.
#[derive(Debug, Clone)]
pub struct IrteTable {
    entries: Vec<Option<Irte>>,
    next_free: u32,
}

/// Every IRTE is in use ("can't allocate an IRTE" in irq_remapping.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrteTableFull;

impl IrteTable {
    /// An empty table of `entry_count` entries.
    pub fn new(entry_count: u32) -> IrteTable {
        assert!(
            (1..=INTR_REMAP_TABLE_ENTRIES).contains(&entry_count),
            "IRTE table size out of range"
        );
        IrteTable {
            entries: vec![None; entry_count as usize],
            next_free: 0,
        }
    }

    /// Entries in use.
    pub fn used(&self) -> u32 {
        self.next_free
    }

    /// Size of the table.
    pub fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }

    /// Allocates and fills the next entry, returning its handle.
    pub fn alloc(&mut self, irte: Irte) -> Result<u16, IrteTableFull> {
        let index = self.next_free;
        if index >= self.capacity() {
            return Err(IrteTableFull);
        }
        self.entries[index as usize] = Some(irte);
        self.next_free += 1;
        Ok(index as u16)
    }

    /// Rewrites an allocated entry (an affinity change or a move).
    pub fn update(&mut self, handle: u16, irte: Irte) {
        let slot = &mut self.entries[usize::from(handle)];
        assert!(slot.is_some(), "updating an IRTE that was never allocated");
        *slot = Some(irte);
    }

    /// What the hardware does with a remappable request for `handle`.
    pub fn lookup(&self, handle: u32) -> Result<Irte, RemapFault> {
        match self.entries.get(handle as usize) {
            None => Err(RemapFault::IndexBeyondTable),
            Some(None) => Err(RemapFault::EntryNotPresent),
            Some(Some(irte)) => Ok(*irte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_outcomes() {
        let mut t = IrteTable::new(2);
        let h = t
            .alloc(Irte {
                dest_apic_id: 3,
                vector: 0x30,
            })
            .unwrap();
        assert_eq!(
            t.lookup(u32::from(h)),
            Ok(Irte {
                dest_apic_id: 3,
                vector: 0x30
            })
        );
        assert_eq!(t.lookup(1), Err(RemapFault::EntryNotPresent));
        assert_eq!(t.lookup(2), Err(RemapFault::IndexBeyondTable));
        t.alloc(Irte {
            dest_apic_id: 0,
            vector: 0x31,
        })
        .unwrap();
        assert_eq!(
            t.alloc(Irte {
                dest_apic_id: 0,
                vector: 0x32
            }),
            Err(IrteTableFull)
        );
        assert_eq!(RemapFault::CompatBlocked.code(), 0x25);
    }
}
