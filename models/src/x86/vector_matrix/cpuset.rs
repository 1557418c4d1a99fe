//! [`CpuSet`], a sorted CPU bitset (the kernel's `cpumask`), and the kernel's
//! `%*pbl` list format of bit numbers ("0-19,32,50") used by its `Debug` output
//! and the debugfs table.

use std::fmt;
use std::ops::Range;

use crate::ids::CpuId;

/// A set of CPUs (the kernel's `cpumask`), iterated in ascending order.
///
/// Stored as 64-bit words with no trailing zero word, so equal sets compare equal.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuSet {
    words: Vec<u64>,
}

impl CpuSet {
    /// The empty set.
    pub fn new() -> CpuSet {
        CpuSet::default()
    }

    /// The CPUs `range.start..range.end`.
    pub fn from_range(range: Range<u32>) -> CpuSet {
        range.map(CpuId).collect()
    }

    /// Adds `cpu`.
    pub fn insert(&mut self, cpu: CpuId) {
        let word_index = (cpu.0 / 64) as usize;
        if self.words.len() <= word_index {
            self.words.resize(word_index + 1, 0);
        }
        self.words[word_index] |= 1 << (cpu.0 % 64);
    }

    /// Removes `cpu`.
    pub fn remove(&mut self, cpu: CpuId) {
        let word_index = (cpu.0 / 64) as usize;
        if let Some(word) = self.words.get_mut(word_index) {
            *word &= !(1 << (cpu.0 % 64));
        }
        self.trim();
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: CpuId) -> bool {
        let word_index = (cpu.0 / 64) as usize;
        self.words.get(word_index).is_some_and(|word| word & (1 << (cpu.0 % 64)) != 0)
    }

    /// The CPUs in both sets (`cpumask_and`).
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        let mut set = CpuSet { words: self.words.iter().zip(&other.words).map(|(a, b)| a & b).collect() };
        set.trim();
        set
    }

    /// The CPUs in either set (`cpumask_or`).
    pub fn union(&self, other: &CpuSet) -> CpuSet {
        let word_count = self.words.len().max(other.words.len());
        let words =
            (0..word_count).map(|i| self.words.get(i).unwrap_or(&0) | other.words.get(i).unwrap_or(&0)).collect();
        CpuSet { words }
    }

    /// Whether every CPU of `self` is in `other` (`cpumask_subset`).
    pub fn is_subset(&self, other: &CpuSet) -> bool {
        self.words.iter().enumerate().all(|(i, word)| word & !other.words.get(i).unwrap_or(&0) == 0)
    }

    /// Whether the set is empty (`cpumask_empty`).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Number of CPUs in the set (`cpumask_weight`).
    pub fn len(&self) -> u32 {
        self.words.iter().map(|word| word.count_ones()).sum()
    }

    /// The lowest CPU (`cpumask_first`).
    pub fn first(&self) -> Option<CpuId> {
        self.iter().next()
    }

    /// The CPUs in ascending order (`for_each_cpu`).
    pub fn iter(&self) -> impl Iterator<Item = CpuId> + '_ {
        // Set bits only: a zero word costs one test, a set bit one trailing-zeros count.
        self.words.iter().enumerate().filter(|(_, word)| **word != 0).flat_map(|(word_index, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                Some(CpuId(word_index as u32 * 64 + bit))
            })
        })
    }

    fn trim(&mut self) {
        while self.words.last() == Some(&0) {
            self.words.pop();
        }
    }
}

impl FromIterator<CpuId> for CpuSet {
    fn from_iter<I: IntoIterator<Item = CpuId>>(iter: I) -> CpuSet {
        let mut set = CpuSet::new();
        for cpu in iter {
            set.insert(cpu);
        }
        set
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet[{}]", bitmap_list(self.iter().map(|cpu| cpu.0)))
    }
}

/// Formats ascending bit numbers as the kernel's `%*pbl` ("0-19,32,50").
pub(super) fn bitmap_list(bits: impl Iterator<Item = u32>) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for bit in bits {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == bit => *last = bit,
            _ => ranges.push((bit, bit)),
        }
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(first, last)| if first == last { format!("{first}") } else { format!("{first}-{last}") })
        .collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x86::vector_matrix::testutil::cpus;

    #[test]
    fn cpuset_is_a_sorted_normalised_bitset() {
        let mut set = CpuSet::from_range(62..67);
        assert_eq!(set.iter().map(|cpu| cpu.0).collect::<Vec<_>>(), vec![62, 63, 64, 65, 66]);
        set.remove(CpuId(64));
        set.remove(CpuId(65));
        set.remove(CpuId(66));
        assert_eq!(set, cpus(&[62, 63]), "trailing zero words must not affect equality");
        assert!(set.contains(CpuId(63)) && !set.contains(CpuId(64)) && !set.contains(CpuId(1000)));
        assert_eq!(set.intersection(&cpus(&[1, 63, 100])), cpus(&[63]));
        assert!(cpus(&[63]).is_subset(&set) && !cpus(&[64]).is_subset(&set));
        assert_eq!(set.union(&cpus(&[0])).len(), 3);
        assert!(set.intersection(&cpus(&[0])).is_empty());
        assert_eq!(format!("{:?}", cpus(&[0, 1, 2, 5, 7, 8])), "CpuSet[0-2,5,7-8]");
    }
}
