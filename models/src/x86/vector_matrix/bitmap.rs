//! `VectorBitmap`: one CPU's 256-bit map of vectors (matrix.c's
//! `alloc_map`/`managed_map`/`system_map`), with the bitmap operations the
//! allocator needs.

use std::ops::Range;

use super::era::NR_VECTORS;

/// A 256-bit map of vectors (`unsigned long alloc_map[IRQ_MATRIX_SIZE]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct VectorBitmap([u64; 4]);

impl VectorBitmap {
    pub(super) fn test(&self, bit: u32) -> bool {
        self.0[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }

    pub(super) fn set(&mut self, bit: u32) {
        self.0[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    pub(super) fn clear(&mut self, bit: u32) {
        self.0[(bit / 64) as usize] &= !(1 << (bit % 64));
    }

    pub(super) fn or(&self, other: &VectorBitmap) -> VectorBitmap {
        VectorBitmap(std::array::from_fn(|i| self.0[i] | other.0[i]))
    }

    pub(super) fn and(&self, other: &VectorBitmap) -> VectorBitmap {
        VectorBitmap(std::array::from_fn(|i| self.0[i] & other.0[i]))
    }

    pub(super) fn andnot(&self, other: &VectorBitmap) -> VectorBitmap {
        VectorBitmap(std::array::from_fn(|i| self.0[i] & !other.0[i]))
    }

    pub(super) fn weight(&self) -> u32 {
        self.0.iter().map(|word| word.count_ones()).sum()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.iter().all(|&word| word == 0)
    }

    /// The bits in `range` (`bitmap_set` over a range).
    pub(super) fn from_range(range: Range<u32>) -> VectorBitmap {
        let mut map = VectorBitmap::default();
        for bit in range {
            map.set(bit);
        }
        map
    }

    /// `find_first_bit` limited to `[start, end)`; `end` when there is none.
    pub(super) fn find_first_bit(&self, start: u32, end: u32) -> u32 {
        (start..end).find(|&bit| self.test(bit)).unwrap_or(end)
    }

    /// `find_next_zero_bit` limited to `[start, end)`; `end` when there is none.
    pub(super) fn find_first_zero(&self, start: u32, end: u32) -> u32 {
        (start..end).find(|&bit| !self.test(bit)).unwrap_or(end)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..NR_VECTORS).filter(|&bit| self.test(bit))
    }
}
