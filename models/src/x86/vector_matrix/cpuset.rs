//! [`CpuSet`], a sorted CPU bitset (the kernel's `cpumask`), and the kernel's
//! `%*pbl` list format of bit numbers ("0-19,32,50") used by its `Debug` output
//! and the debugfs table.

use std::fmt;
use std::ops::Range;

use crate::ids::CpuId;

/// A set of CPUs (the kernel's `cpumask`), iterated in ascending order.
///
/// Stored as the 64-bit words from the first non-zero one to the last, and the index of the
/// first: a queue's mask of a few CPUs near CPU 8,000 takes one or two words, not 126 (at a
/// million queues the masks sized to the highest CPU took most of the memory). Normalised
/// (no zero word at either end; the empty set is no words at index 0), so equal sets compare
/// equal.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuSet {
    /// The index of `words[0]` among all words (CPU `64 * first_word` is its bit 0).
    first_word: u32,
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

    /// The word that holds CPU bits `64 * word_index ..`, zero outside the stored ones.
    fn word(&self, word_index: u32) -> u64 {
        word_index.checked_sub(self.first_word).and_then(|i| self.words.get(i as usize)).copied().unwrap_or(0)
    }

    /// One past the index of the last stored word.
    fn end_word(&self) -> u32 {
        self.first_word + self.words.len() as u32
    }

    /// Adds `cpu`.
    pub fn insert(&mut self, cpu: CpuId) {
        self.insert_word(cpu.0 / 64, 1 << (cpu.0 % 64));
    }

    /// Adds the CPUs `64 * word_index + b` for each bit `b` set in `bits` (not zero).
    fn insert_word(&mut self, word_index: u32, bits: u64) {
        debug_assert!(bits != 0, "an empty word would break the normalisation");
        if self.words.is_empty() {
            // Room for exactly one word: most masks are a few neighbouring CPUs, and
            // `from_iter` then has nothing to shrink.
            self.first_word = word_index;
            self.words = vec![0];
        } else if word_index < self.first_word {
            let missing = (self.first_word - word_index) as usize;
            self.words.splice(0..0, std::iter::repeat_n(0, missing));
            self.first_word = word_index;
        } else if word_index >= self.end_word() {
            self.words.resize((word_index - self.first_word) as usize + 1, 0);
        }
        self.words[(word_index - self.first_word) as usize] |= bits;
    }

    /// Removes `cpu`.
    pub fn remove(&mut self, cpu: CpuId) {
        let word_index = cpu.0 / 64;
        if let Some(word) = word_index.checked_sub(self.first_word).and_then(|i| self.words.get_mut(i as usize)) {
            *word &= !(1 << (cpu.0 % 64));
            self.trim();
        }
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: CpuId) -> bool {
        self.word(cpu.0 / 64) & (1 << (cpu.0 % 64)) != 0
    }

    /// The CPUs in both sets (`cpumask_and`).
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        let first_word = self.first_word.max(other.first_word);
        let end_word = self.end_word().min(other.end_word());
        let words = (first_word..end_word.max(first_word)).map(|w| self.word(w) & other.word(w)).collect();
        let mut set = CpuSet { first_word, words };
        set.trim();
        set
    }

    /// The CPUs in either set (`cpumask_or`).
    pub fn union(&self, other: &CpuSet) -> CpuSet {
        if self.is_empty() || other.is_empty() {
            return if self.is_empty() { other.clone() } else { self.clone() };
        }
        let first_word = self.first_word.min(other.first_word);
        let end_word = self.end_word().max(other.end_word());
        CpuSet { first_word, words: (first_word..end_word).map(|w| self.word(w) | other.word(w)).collect() }
    }

    /// Whether every CPU of `self` is in `other` (`cpumask_subset`).
    pub fn is_subset(&self, other: &CpuSet) -> bool {
        (self.first_word..self.end_word()).all(|w| self.word(w) & !other.word(w) == 0)
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
        let first_word = self.first_word;
        self.words.iter().enumerate().filter(|(_, word)| **word != 0).flat_map(move |(i, &word)| {
            let mut bits = word;
            let base = (first_word + i as u32) * 64;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                Some(CpuId(base + bit))
            })
        })
    }

    /// Drops zero words at both ends.
    fn trim(&mut self) {
        while self.words.last() == Some(&0) {
            self.words.pop();
        }
        let leading = self.words.iter().take_while(|&&word| word == 0).count();
        if leading > 0 {
            self.words.drain(..leading);
            self.first_word += leading as u32;
        }
        if self.words.is_empty() {
            self.first_word = 0;
        }
        self.words.shrink_to_fit();
    }
}

impl FromIterator<CpuId> for CpuSet {
    fn from_iter<I: IntoIterator<Item = CpuId>>(iter: I) -> CpuSet {
        // The bits of one word gathered before they are stored: a mask of neighbouring
        // CPUs (a spread mask, a node) is one store per word, not one per CPU. Any order
        // gives the same set.
        let mut set = CpuSet::new();
        let mut pending: Option<(u32, u64)> = None;
        for cpu in iter {
            let (word_index, bit) = (cpu.0 / 64, 1u64 << (cpu.0 % 64));
            match &mut pending {
                Some((index, bits)) if *index == word_index => *bits |= bit,
                _ => {
                    if let Some((index, bits)) = pending {
                        set.insert_word(index, bits);
                    }
                    pending = Some((word_index, bit));
                }
            }
        }
        if let Some((index, bits)) = pending {
            set.insert_word(index, bits);
        }
        set.words.shrink_to_fit();
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

    /// Collecting gathers one word's bits before storing them: in any order (descending,
    /// back and forth between words, repeats) the set is the one inserted CPU by CPU.
    #[test]
    fn collecting_in_any_order_is_inserting_one_by_one() {
        use sim::SplitMix64;
        let mut rng = SplitMix64::new(5);
        for _ in 0..500 {
            let count = rng.next_u64() % 12;
            let order: Vec<u32> = (0..count).map(|_| (rng.next_u64() % 400) as u32).collect();
            let mut one_by_one = CpuSet::new();
            for &cpu in &order {
                one_by_one.insert(CpuId(cpu));
            }
            let collected: CpuSet = order.iter().map(|&cpu| CpuId(cpu)).collect();
            assert_eq!(collected, one_by_one, "{order:?}");
        }
        let descending: CpuSet = [130, 129, 65, 64, 63, 2].into_iter().map(CpuId).collect();
        assert_eq!(format!("{descending:?}"), "CpuSet[2,63-65,129-130]");
    }

    /// Every operation against a `BTreeSet` of the same CPUs, on random sets that start and
    /// end in different words (the stored words begin at the first non-zero one), including
    /// empty ones and removals that empty the first or the last word.
    #[test]
    fn cpuset_operations_match_a_sorted_set() {
        use sim::SplitMix64;
        use std::collections::BTreeSet;
        let mut rng = SplitMix64::new(12);
        let random_set = |rng: &mut SplitMix64| -> BTreeSet<u32> {
            let base = (rng.next_u64() % 300) as u32;
            let span = 1 + (rng.next_u64() % 200) as u32;
            let count = rng.next_u64() % 6;
            (0..count).map(|_| base + (rng.next_u64() % u64::from(span)) as u32).collect()
        };
        let to_set = |cpus: &BTreeSet<u32>| -> CpuSet { cpus.iter().map(|&c| CpuId(c)).collect() };
        let ids = |set: &CpuSet| -> Vec<u32> { set.iter().map(|cpu| cpu.0).collect() };
        for _ in 0..2000 {
            let (a, b) = (random_set(&mut rng), random_set(&mut rng));
            let (sa, sb) = (to_set(&a), to_set(&b));
            assert_eq!(ids(&sa), a.iter().copied().collect::<Vec<_>>());
            assert_eq!(sa.len() as usize, a.len());
            assert_eq!(sa.is_empty(), a.is_empty());
            assert_eq!(sa.first().map(|cpu| cpu.0), a.first().copied());
            assert_eq!(sa.intersection(&sb), to_set(&a.intersection(&b).copied().collect()));
            assert_eq!(sa.union(&sb), to_set(&a.union(&b).copied().collect()));
            assert_eq!(sa.is_subset(&sb), a.is_subset(&b));
            assert!(sa.is_subset(&sa.union(&sb)));
            for cpu in 0..520 {
                assert_eq!(sa.contains(CpuId(cpu)), a.contains(&cpu));
            }
            // Removing in a random order keeps the set equal to the one built from the rest.
            let mut shrinking = sa.clone();
            let mut rest = a.clone();
            for cpu in b.iter().chain(a.iter()) {
                shrinking.remove(CpuId(*cpu));
                rest.remove(cpu);
                assert_eq!(shrinking, to_set(&rest));
            }
            // Inserting below the first stored word.
            let mut growing = sb.clone();
            for &cpu in a.iter().rev() {
                growing.insert(CpuId(cpu));
            }
            assert_eq!(growing, sa.union(&sb));
        }
    }
}
