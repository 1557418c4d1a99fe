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
        self.find_first(start, end, false)
    }

    /// `find_next_zero_bit` limited to `[start, end)`; `end` when there is none.
    pub(super) fn find_first_zero(&self, start: u32, end: u32) -> u32 {
        self.find_first(start, end, true)
    }

    /// The first set bit (of the complement when `invert`) in `[start, end)`, a word at a
    /// time: the bits below `start` are masked off, the lowest remaining one is the trailing
    /// zero count.
    fn find_first(&self, start: u32, end: u32, invert: bool) -> u32 {
        debug_assert!(end <= NR_VECTORS);
        let mut word_index = start / 64;
        let mut skip_below = start % 64;
        while word_index * 64 < end {
            let word = self.0[word_index as usize] ^ if invert { u64::MAX } else { 0 };
            let word = word & (u64::MAX << skip_below);
            if word != 0 {
                return (word_index * 64 + word.trailing_zeros()).min(end);
            }
            word_index += 1;
            skip_below = 0;
        }
        end
    }

    /// The set bits in ascending order, a word at a time.
    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(word_index, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                Some(word_index as u32 * 64 + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::SplitMix64;

    /// The word-at-a-time searches against their bit-by-bit definitions, on sparse, dense and
    /// random maps, for every start and a spread of ends.
    #[test]
    fn word_searches_match_the_bit_by_bit_definitions() {
        let mut rng = SplitMix64::new(7);
        let mut maps = vec![VectorBitmap::default(), VectorBitmap([u64::MAX; 4]), VectorBitmap::from_range(32..236)];
        maps.extend((0..40).map(|_| VectorBitmap(std::array::from_fn(|_| rng.next_u64() & rng.next_u64()))));
        maps.extend((0..40).map(|_| VectorBitmap(std::array::from_fn(|_| rng.next_u64() | rng.next_u64()))));
        for map in &maps {
            let bits: Vec<u32> = (0..NR_VECTORS).filter(|&bit| map.test(bit)).collect();
            assert_eq!(map.iter().collect::<Vec<_>>(), bits);
            for start in 0..=NR_VECTORS {
                for end in [0, 1, 32, 63, 64, 65, 128, 200, 236, 255, 256] {
                    let first_set = (start..end).find(|&b| map.test(b)).unwrap_or(end);
                    let first_zero = (start..end).find(|&b| !map.test(b)).unwrap_or(end);
                    assert_eq!(map.find_first_bit(start, end), first_set.min(end), "{map:?} {start} {end}");
                    assert_eq!(map.find_first_zero(start, end), first_zero.min(end), "{map:?} {start} {end}");
                }
            }
        }
    }
}
