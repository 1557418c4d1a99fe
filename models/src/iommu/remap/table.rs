//! One IOMMU's interrupt-remapping table ([`IrteTable`]): its entries, Linux's `alloc_irte()`
//! block allocator over a bitmap (naturally aligned power-of-two [`IrteBlock`]s, the mask
//! limited by ECAP.MHMV), the untimed lookup the platform uses, and the allocation and table
//! errors.

use std::collections::BTreeSet;
use std::fmt;

use super::faults::RemapFault;
use super::irte::{Irte, IrteEntry, IrteMode, PackedIrte, SourceValidation};

/// Entries in one interrupt-remapping table (Linux always allocates the maximum).
pub const INTR_REMAP_TABLE_ENTRIES: u32 = 65_536;

/// Largest value of ECAP.MHMV, a 4-bit field (iommu.h `ecap_max_handle_mask`).
pub const MAX_HANDLE_MASK_LIMIT: u8 = 15;

/// Every IRTE is in use ("can't allocate an IRTE" in irq_remapping.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrteTableFull;

impl fmt::Display for IrteTableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("can't allocate an IRTE")
    }
}

/// Why an IRTE block could not be allocated (`alloc_irte` returning -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrteAllocError {
    /// A request for zero entries.
    ZeroCount,
    /// The rounded-up block needs a mask above ECAP.MHMV ("Requested mask %x exceeds the max
    /// invalidation handle mask value").
    MaskTooLarge {
        /// log2 of the rounded-up count.
        mask: u32,
        /// The table's MHMV.
        max: u8,
    },
    /// No free naturally aligned block of that size.
    Full,
}

impl From<IrteTableFull> for IrteAllocError {
    fn from(_: IrteTableFull) -> IrteAllocError {
        IrteAllocError::Full
    }
}

impl fmt::Display for IrteAllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IrteAllocError::ZeroCount => f.write_str("IRTE allocation of zero entries"),
            IrteAllocError::MaskTooLarge { mask, max } => {
                write!(f, "Requested mask {mask:x} exceeds the max invalidation handle mask value {max:x}")
            }
            IrteAllocError::Full => IrteTableFull.fmt(f),
        }
    }
}

/// A naturally aligned block of 2^`mask` IRTEs starting at `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IrteBlock {
    /// First index (the handle programmed into the device).
    pub base: u32,
    /// log2 of the block size.
    pub mask: u8,
}

impl IrteBlock {
    /// Entries in the block.
    pub fn count(self) -> u32 {
        1 << self.mask
    }

    /// Whether `index` lies in the block.
    pub fn contains(self, index: u32) -> bool {
        index >= self.base && index - self.base < self.count()
    }
}

/// A table operation named an index or block the table does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrteOpError {
    /// The index is at or beyond the table size.
    IndexBeyondTable {
        /// The index.
        index: u32,
    },
    /// The index is not part of an allocated block.
    NotAllocated {
        /// The index.
        index: u32,
    },
    /// No allocated block starts at `base` with that mask.
    NotABlock {
        /// The block named.
        block: IrteBlock,
    },
}

impl fmt::Display for IrteOpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IrteOpError::IndexBeyondTable { index } => write!(f, "IRTE index {index} beyond the table"),
            IrteOpError::NotAllocated { index } => write!(f, "IRTE index {index} is not allocated"),
            IrteOpError::NotABlock { block } => {
                write!(f, "no allocated IRTE block at {} of mask {}", block.base, block.mask)
            }
        }
    }
}

/// One IOMMU's interrupt-remapping table and its allocation bitmap.
#[derive(Debug, Clone)]
pub struct IrteTable {
    /// The entries, packed (16 bytes each, as VT-d's).
    entries: Vec<PackedIrte>,
    bitmap: Vec<u64>,
    /// `mask + 1` at the base of every allocated block, 0 elsewhere.
    block_heads: Vec<u8>,
    /// Every bitmap word below this index is full: the search for a free block starts here
    /// (a full table of 65,536 entries made each allocation scan up to 1,024 words).
    full_below: u32,
    used: u32,
    pub(super) max_handle_mask: u8,
    access_errors: BTreeSet<u32>,
}

impl IrteTable {
    /// An empty table of `entry_count` entries whose MHMV is the largest possible (15).
    ///
    /// # Panics
    /// If `entry_count` is not in 1..=65,536.
    pub fn new(entry_count: u32) -> IrteTable {
        IrteTable::with_max_handle_mask(entry_count, MAX_HANDLE_MASK_LIMIT)
    }

    /// An empty table of `entry_count` entries allowing blocks up to 2^`max_handle_mask`.
    ///
    /// # Panics
    /// If `entry_count` is not in 1..=65,536 or `max_handle_mask` exceeds 15.
    pub fn with_max_handle_mask(entry_count: u32, max_handle_mask: u8) -> IrteTable {
        assert!((1..=INTR_REMAP_TABLE_ENTRIES).contains(&entry_count), "IRTE table size out of range");
        assert!(max_handle_mask <= MAX_HANDLE_MASK_LIMIT, "MHMV is a 4-bit field");
        IrteTable {
            entries: vec![PackedIrte::default(); entry_count as usize],
            bitmap: vec![0; entry_count.div_ceil(64) as usize],
            block_heads: vec![0; entry_count as usize],
            full_below: 0,
            used: 0,
            max_handle_mask,
            access_errors: BTreeSet::new(),
        }
    }

    /// Entries in use (allocated, whether or not present).
    pub fn used(&self) -> u32 {
        self.used
    }

    /// Size of the table.
    pub fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }

    /// The largest block mask allocations may use (ECAP.MHMV).
    pub fn max_handle_mask(&self) -> u8 {
        self.max_handle_mask
    }

    /// Allocates one entry and fills it with a present remapped-format entry without source
    /// verification, returning its handle.
    pub fn alloc(&mut self, irte: Irte) -> Result<u16, IrteTableFull> {
        let block = self.alloc_block(1).map_err(|_| IrteTableFull)?;
        self.entries[block.base as usize] = PackedIrte::new(IrteEntry::from(irte));
        Ok(u16::try_from(block.base).expect("tables hold at most 65,536 entries"))
    }

    /// Allocates a block for `count` entries like `alloc_irte()`: rounded up to a power of
    /// two, naturally aligned, the lowest free one. The entries stay not present.
    pub fn alloc_block(&mut self, count: u32) -> Result<IrteBlock, IrteAllocError> {
        let mask = Self::mask_for(count)?;
        if mask > u32::from(self.max_handle_mask) {
            return Err(IrteAllocError::MaskTooLarge { mask, max: self.max_handle_mask });
        }
        let mask = mask as u8;
        let base = self.find_free_region(mask).ok_or(IrteAllocError::Full)?;
        let block = IrteBlock { base, mask };
        self.set_region(block, true);
        self.block_heads[base as usize] = mask + 1;
        self.used += block.count();
        while self.bitmap.get(self.full_below as usize) == Some(&u64::MAX) {
            self.full_below += 1;
        }
        Ok(block)
    }

    /// Frees a whole block and clears its entries (`clear_entries()`).
    pub fn free_block(&mut self, block: IrteBlock) -> Result<(), IrteOpError> {
        self.release_block(block)?;
        self.clear_entries(block);
        Ok(())
    }

    /// Rewrites an allocated entry with a present remapped-format entry (an affinity change
    /// or a move), untimed.
    ///
    /// # Panics
    /// If `handle` was never allocated: that is a bug in the caller. [`IrteTable::set_entry`]
    /// returns an error instead.
    pub fn update(&mut self, handle: u16, irte: Irte) {
        let index = u32::from(handle);
        assert!(self.is_allocated(index), "updating an IRTE that was never allocated");
        self.entries[index as usize] = PackedIrte::new(IrteEntry::from(irte));
    }

    /// Writes an allocated entry directly, bypassing the update lock and caches.
    pub fn set_entry(&mut self, index: u32, entry: IrteEntry) -> Result<(), IrteOpError> {
        self.check_allocated(index)?;
        self.entries[index as usize] = PackedIrte::new(entry);
        Ok(())
    }

    /// The entry at `index`, `None` beyond the table.
    pub fn entry(&self, index: u32) -> Option<IrteEntry> {
        self.entries.get(index as usize).map(|e| e.get())
    }

    /// The entry at `index` (below the capacity): the hardware's table read.
    #[inline]
    pub(super) fn read(&self, index: u32) -> IrteEntry {
        self.entries[index as usize].get()
    }

    /// Prefetches entry `index` (a hint: nothing is read, any index will do).
    #[inline(always)]
    pub fn prefetch(&self, index: u32) {
        prefetch_index::prefetch_index(&self.entries, index as usize);
    }

    /// Whether `index` belongs to an allocated block.
    pub fn is_allocated(&self, index: u32) -> bool {
        index < self.capacity() && self.bitmap[(index / 64) as usize] >> (index % 64) & 1 == 1
    }

    /// Makes reads of entry `index` fail (fault 0x23), or heal again: fault injection.
    pub fn set_access_error(&mut self, index: u32, failing: bool) {
        if failing {
            self.access_errors.insert(index);
        } else {
            self.access_errors.remove(&index);
        }
    }

    /// Whether reading entry `index` fails.
    pub fn has_access_error(&self, index: u32) -> bool {
        self.access_errors.contains(&index)
    }

    /// The allocated blocks in index order.
    pub fn blocks(&self) -> impl Iterator<Item = IrteBlock> + '_ {
        self.block_heads
            .iter()
            .enumerate()
            .filter(|(_, h)| **h != 0)
            .map(|(base, h)| IrteBlock { base: base as u32, mask: h - 1 })
    }

    /// What the hardware does with a remappable request for `handle`, for callers that model
    /// neither requester ids nor posting: no cache, no fault recording, source verification
    /// skipped, and posted entries are reserved-field faults (a unit without CAP.PI).
    pub fn lookup(&self, handle: u32) -> Result<Irte, RemapFault> {
        let Some(entry) = self.entry(handle) else {
            return Err(RemapFault::IndexBeyondTable);
        };
        if self.access_errors.contains(&handle) {
            return Err(RemapFault::TableAccessError);
        }
        if !entry.present {
            return Err(RemapFault::EntryNotPresent);
        }
        match entry.mode {
            IrteMode::Remapped { dest, vector }
                if !entry.reserved_bits_set && entry.source != SourceValidation::Reserved =>
            {
                Ok(Irte { dest_apic_id: dest.0, vector: vector.0 })
            }
            _ => Err(RemapFault::ReservedFieldsInIrte),
        }
    }

    /// Checks the allocator's invariants: blocks aligned, inside the table and disjoint; the
    /// bitmap is exactly their union; `used` is its population.
    pub fn check_invariants(&self) -> Result<(), String> {
        let cap = self.capacity();
        if self.block_heads.len() != cap as usize || self.bitmap.len() != cap.div_ceil(64) as usize {
            return Err("table arrays disagree on the size".into());
        }
        let mut expected = vec![0u64; self.bitmap.len()];
        let mut previous_end = 0u32;
        let mut total = 0u32;
        for block in self.blocks() {
            if block.mask > 16 {
                return Err(format!("block at {} has mask {}", block.base, block.mask));
            }
            let size = block.count();
            if block.base % size != 0 {
                return Err(format!("block at {} of size {size} is not aligned", block.base));
            }
            if block.base < previous_end {
                return Err(format!("block at {} overlaps the one before", block.base));
            }
            if block.base + size > cap {
                return Err(format!("block at {} of size {size} passes the table end", block.base));
            }
            for i in block.base..block.base + size {
                expected[(i / 64) as usize] |= 1 << (i % 64);
            }
            previous_end = block.base + size;
            total += size;
        }
        if expected != self.bitmap {
            return Err("bitmap differs from the union of the blocks".into());
        }
        if let Some(w) = self.bitmap[..self.full_below as usize].iter().position(|&w| w != u64::MAX) {
            return Err(format!("bitmap word {w} is not full, below the search start {}", self.full_below));
        }
        let population: u32 = self.bitmap.iter().map(|w| w.count_ones()).sum();
        if population != self.used || total != self.used {
            return Err(format!("used {} but bitmap holds {population} and blocks {total}", self.used));
        }
        Ok(())
    }

    pub(super) fn mask_for(count: u32) -> Result<u32, IrteAllocError> {
        match count {
            0 => Err(IrteAllocError::ZeroCount),
            1 => Ok(0),
            _ => Ok(count.checked_next_power_of_two().map_or(32, u32::trailing_zeros)),
        }
    }

    pub(super) fn check_allocated(&self, index: u32) -> Result<(), IrteOpError> {
        if index >= self.capacity() {
            Err(IrteOpError::IndexBeyondTable { index })
        } else if !self.is_allocated(index) {
            Err(IrteOpError::NotAllocated { index })
        } else {
            Ok(())
        }
    }

    /// `bitmap_find_free_region()`: the lowest aligned free block of 2^`mask` entries. The
    /// search starts at the first word that is not full: no free block lies below it.
    fn find_free_region(&self, mask: u8) -> Option<u32> {
        let size = 1u32 << mask;
        let cap = self.capacity();
        if size >= 64 {
            let words = (size / 64) as usize;
            // The aligned block that holds the first entry of the first word that is not full.
            let mut pos = (self.full_below * 64) & !(size - 1);
            while pos + size <= cap {
                let w = (pos / 64) as usize;
                if self.bitmap[w..w + words].iter().all(|&x| x == 0) {
                    return Some(pos);
                }
                pos += size;
            }
            return None;
        }
        let block_bits = (1u64 << size) - 1;
        for (w, &word) in self.bitmap.iter().enumerate().skip(self.full_below as usize) {
            if word == u64::MAX {
                continue;
            }
            if size == 1 {
                // The lowest zero bit, without trying each offset.
                let pos = w as u32 * 64 + word.trailing_ones();
                return (pos < cap).then_some(pos);
            }
            let mut offset = 0u32;
            while offset < 64 {
                let pos = w as u32 * 64 + offset;
                if pos + size > cap {
                    return None;
                }
                if word & (block_bits << offset) == 0 {
                    return Some(pos);
                }
                offset += size;
            }
        }
        None
    }

    fn set_region(&mut self, block: IrteBlock, set: bool) {
        let size = block.count();
        if size >= 64 {
            let w = (block.base / 64) as usize;
            let value = if set { u64::MAX } else { 0 };
            self.bitmap[w..w + (size / 64) as usize].fill(value);
        } else {
            let bits = ((1u64 << size) - 1) << (block.base % 64);
            let word = &mut self.bitmap[(block.base / 64) as usize];
            if set {
                *word |= bits;
            } else {
                *word &= !bits;
            }
        }
    }

    /// Releases a block in the bitmap (`bitmap_release_region`), leaving its entries.
    pub(super) fn release_block(&mut self, block: IrteBlock) -> Result<(), IrteOpError> {
        let head = self.block_heads.get(block.base as usize).copied();
        if head != Some(block.mask.wrapping_add(1)) || block.mask > 16 {
            return Err(IrteOpError::NotABlock { block });
        }
        self.set_region(block, false);
        self.block_heads[block.base as usize] = 0;
        self.used -= block.count();
        self.full_below = self.full_below.min(block.base / 64);
        Ok(())
    }

    pub(super) fn clear_entries(&mut self, block: IrteBlock) {
        let start = block.base as usize;
        let end = (start + block.count() as usize).min(self.entries.len());
        self.entries[start..end].fill(PackedIrte::default());
    }

    pub(super) fn write_raw(&mut self, index: u32, entry: IrteEntry) {
        self.entries[index as usize] = PackedIrte::new(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Vector;
    use crate::iommu::remap::PiDescId;

    #[test]
    fn legacy_table_api_as_the_platform_uses_it() {
        let mut t = IrteTable::new(2);
        let irte = Irte { dest_apic_id: 3, vector: 0x30 };
        let h = t.alloc(irte).unwrap();
        assert_eq!(t.lookup(u32::from(h)), Ok(irte));
        assert_eq!(t.lookup(1), Err(RemapFault::EntryNotPresent));
        assert_eq!(t.lookup(2), Err(RemapFault::IndexBeyondTable));
        let never = std::panic::catch_unwind(|| IrteTable::new(2).update(1, irte));
        assert!(never.is_err(), "updating an unallocated IRTE is a caller bug");
        assert_eq!(t.alloc(irte), Ok(1));
        assert_eq!(t.alloc(irte), Err(IrteTableFull));
        let moved = Irte { dest_apic_id: 9, vector: 0x31 };
        t.update(1, moved);
        assert_eq!(t.lookup(1), Ok(moved));
        assert_eq!((t.used(), t.capacity()), (2, 2));
        assert_eq!(IrteTableFull.to_string(), "can't allocate an IRTE");
        // A posted entry is a reserved-field fault for a caller without posting support.
        t.set_entry(1, IrteEntry::posted(PiDescId(1), Vector(0x50), false)).unwrap();
        assert_eq!(t.lookup(1), Err(RemapFault::ReservedFieldsInIrte));
        t.set_access_error(0, true);
        assert_eq!(t.lookup(0), Err(RemapFault::TableAccessError));
    }

    #[test]
    fn blocks_are_aligned_powers_of_two() {
        // 64 entries. Each request takes the lowest free aligned block of its rounded size:
        // 1 -> [0], 32 -> [32,64) (0 is taken), 16 -> [16,32), 8 -> [8,16), 4 -> [4,8),
        // 2 -> [2,4), 1 -> [1]: 1+32+16+8+4+2+1 = 64 entries, so the table is full.
        let mut t = IrteTable::with_max_handle_mask(64, 5);
        let expected = [(1, 0, 0), (32, 32, 5), (16, 16, 4), (8, 8, 3), (4, 4, 2), (2, 2, 1), (1, 1, 0)];
        for (count, base, mask) in expected {
            assert_eq!(t.alloc_block(count), Ok(IrteBlock { base, mask }), "count {count}");
        }
        assert_eq!(t.used(), 64);
        assert_eq!(t.alloc_block(1), Err(IrteAllocError::Full));
        t.check_invariants().unwrap();

        // Rounding up: 3 -> 4 entries at 0, 5 -> 8 entries at 8, then 1 fills index 4.
        let mut t = IrteTable::with_max_handle_mask(64, 5);
        assert_eq!(t.alloc_block(3), Ok(IrteBlock { base: 0, mask: 2 }));
        assert_eq!(t.alloc_block(5), Ok(IrteBlock { base: 8, mask: 3 }));
        assert_eq!(t.alloc_block(1), Ok(IrteBlock { base: 4, mask: 0 }));
        assert_eq!(t.used(), 4 + 8 + 1);
        // The mask limit: MHMV 5 allows 32 entries; 33 needs mask 6.
        assert_eq!(t.alloc_block(33), Err(IrteAllocError::MaskTooLarge { mask: 6, max: 5 }));
        assert_eq!(t.alloc_block(0), Err(IrteAllocError::ZeroCount));
        let mut small = IrteTable::with_max_handle_mask(64, 2);
        assert_eq!(small.alloc_block(5), Err(IrteAllocError::MaskTooLarge { mask: 3, max: 2 }));
        assert_eq!(small.alloc_block(4), Ok(IrteBlock { base: 0, mask: 2 }));
    }

    #[test]
    fn a_full_table_takes_exactly_2048_blocks_of_32() {
        // 65,536 / 32 = 2,048 aligned blocks, allocated in address order.
        let mut t = IrteTable::with_max_handle_mask(INTR_REMAP_TABLE_ENTRIES, 5);
        let blocks = INTR_REMAP_TABLE_ENTRIES / 32;
        assert_eq!(blocks, 2_048);
        for k in 0..blocks {
            assert_eq!(t.alloc_block(32), Ok(IrteBlock { base: k * 32, mask: 5 }));
        }
        assert_eq!(t.alloc_block(32), Err(IrteAllocError::Full));
        assert_eq!(t.alloc_block(1), Err(IrteAllocError::Full));
        let irte = Irte { dest_apic_id: 0, vector: 0x30 };
        assert_eq!(t.alloc(irte), Err(IrteTableFull));
        assert_eq!(t.used(), INTR_REMAP_TABLE_ENTRIES);
        t.check_invariants().unwrap();
        // Freeing block 7 makes exactly that block the next one handed out.
        t.free_block(IrteBlock { base: 7 * 32, mask: 5 }).unwrap();
        assert_eq!(t.alloc(irte), Ok(7 * 32));
        assert_eq!(t.alloc_block(2), Ok(IrteBlock { base: 7 * 32 + 2, mask: 1 }));
    }

    #[test]
    fn mixed_sizes_exhaust_and_fragment() {
        // 256 entries: eight blocks of 16 fill [0,128), 64 -> [128,192), 32 -> [192,224),
        // 32 -> [224,256): 8*16 + 64 + 32 + 32 = 256, so one more entry fails.
        let mut t = IrteTable::with_max_handle_mask(256, 6);
        for k in 0..8 {
            assert_eq!(t.alloc_block(16), Ok(IrteBlock { base: k * 16, mask: 4 }));
        }
        assert_eq!(t.alloc_block(64), Ok(IrteBlock { base: 128, mask: 6 }));
        assert_eq!(t.alloc_block(32), Ok(IrteBlock { base: 192, mask: 5 }));
        assert_eq!(t.alloc_block(32), Ok(IrteBlock { base: 224, mask: 5 }));
        assert_eq!(t.alloc_block(1), Err(IrteAllocError::Full));
        // Free [16,32) and [48,64): 32 entries free, but no aligned 32-block (0 and 32 are
        // each half used), so 32 fails while two 16s fit, lowest first.
        t.free_block(IrteBlock { base: 16, mask: 4 }).unwrap();
        t.free_block(IrteBlock { base: 48, mask: 4 }).unwrap();
        assert_eq!(t.used(), 256 - 32);
        assert_eq!(t.alloc_block(32), Err(IrteAllocError::Full));
        assert_eq!(t.alloc_block(9), Ok(IrteBlock { base: 16, mask: 4 }));
        assert_eq!(t.alloc_block(1), Ok(IrteBlock { base: 48, mask: 0 }));
        t.check_invariants().unwrap();
    }

    #[test]
    fn freeing_something_that_is_not_a_block_is_refused() {
        let mut t = IrteTable::with_max_handle_mask(64, 5);
        let b = t.alloc_block(4).unwrap();
        let wrong_mask = IrteBlock { base: 0, mask: 1 };
        let inside = IrteBlock { base: 1, mask: 0 };
        let beyond = IrteBlock { base: 64, mask: 0 };
        for bad in [wrong_mask, inside, beyond] {
            assert_eq!(t.free_block(bad), Err(IrteOpError::NotABlock { block: bad }));
        }
        assert_eq!(t.used(), 4);
        t.free_block(b).unwrap();
        assert_eq!(t.free_block(b), Err(IrteOpError::NotABlock { block: b }));
        assert_eq!(t.set_entry(0, IrteEntry::NOT_PRESENT), Err(IrteOpError::NotAllocated { index: 0 }));
        assert_eq!(t.set_entry(64, IrteEntry::NOT_PRESENT), Err(IrteOpError::IndexBeyondTable { index: 64 }));
        t.check_invariants().unwrap();
    }
}
