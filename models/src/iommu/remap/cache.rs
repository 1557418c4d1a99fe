//! The interrupt entry cache ([`InterruptEntryCache`]): an LRU cache of IRTEs per IOMMU with
//! O(1) lookups, its invalidation scopes ([`IecScope`]) and counts ([`CacheStats`]).

use super::irte::IrteEntry;
use super::table::INTR_REMAP_TABLE_ENTRIES;

/// Which cached entries an IEC invalidation drops (the IEC invalidation descriptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IecScope {
    /// Every entry (`qi_global_iec`).
    Global,
    /// The 2^`mask` entries whose index equals `index` above bit `mask` (`qi_flush_iec`).
    Index {
        /// IIDX.
        index: u32,
        /// IM: low index bits ignored.
        mask: u8,
    },
}

/// Counts kept by one interrupt entry cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that read the table.
    pub misses: u64,
    /// Entries dropped to make room (least recently used).
    pub evictions: u64,
    /// Invalidation commands executed.
    pub invalidations: u64,
    /// Entries those commands dropped.
    pub entries_invalidated: u64,
}

/// An LRU cache of IRTEs by index. Capacity 0 caches nothing.
///
/// O(1) per lookup: a slot per IRTE index points into an intrusive doubly linked list of
/// cached entries, most recently used first (every delivery looks an entry up, so this is on
/// the simulator's hot path).
#[derive(Debug, Clone)]
pub struct InterruptEntryCache {
    capacity: u32,
    nodes: Vec<CacheNode>,
    free: Vec<u32>,
    /// Node of each IRTE index, `NIL` when not cached (empty when the capacity is 0).
    slot: Vec<u32>,
    /// Most recently used node.
    head: u32,
    /// Least recently used node.
    tail: u32,
    len: u32,
    stats: CacheStats,
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct CacheNode {
    index: u32,
    entry: IrteEntry,
    prev: u32,
    next: u32,
}

impl InterruptEntryCache {
    /// An empty cache of `capacity` entries.
    pub fn new(capacity: u32) -> InterruptEntryCache {
        let slots = if capacity == 0 { 0 } else { INTR_REMAP_TABLE_ENTRIES as usize };
        InterruptEntryCache {
            capacity,
            nodes: Vec::new(),
            free: Vec::new(),
            slot: vec![NIL; slots],
            head: NIL,
            tail: NIL,
            len: 0,
            stats: CacheStats::default(),
        }
    }

    /// Entries the cache can hold.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Entries it holds now.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn node_of(&self, index: u32) -> Option<u32> {
        self.slot.get(index as usize).copied().filter(|&n| n != NIL)
    }

    /// Whether `index` is cached (does not count as a use).
    pub fn contains(&self, index: u32) -> bool {
        self.node_of(index).is_some()
    }

    /// Hit and miss counts.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    fn unlink(&mut self, n: u32) {
        let CacheNode { prev, next, .. } = self.nodes[n as usize];
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            x => self.nodes[x as usize].prev = prev,
        }
    }

    fn push_front(&mut self, n: u32) {
        self.nodes[n as usize].prev = NIL;
        self.nodes[n as usize].next = self.head;
        match self.head {
            NIL => self.tail = n,
            h => self.nodes[h as usize].prev = n,
        }
        self.head = n;
    }

    fn remove_node(&mut self, n: u32) {
        self.unlink(n);
        let index = self.nodes[n as usize].index;
        self.slot[index as usize] = NIL;
        self.free.push(n);
        self.len -= 1;
    }

    /// Looks `index` up, counting a hit (and marking it most recently used) or a miss.
    pub fn get(&mut self, index: u32) -> Option<IrteEntry> {
        match self.node_of(index) {
            Some(n) => {
                if self.head != n {
                    self.unlink(n);
                    self.push_front(n);
                }
                self.stats.hits += 1;
                Some(self.nodes[n as usize].entry)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Caches `entry` for `index`, evicting the least recently used entry if full.
    pub fn insert(&mut self, index: u32, entry: IrteEntry) {
        if self.capacity == 0 || index as usize >= self.slot.len() {
            return;
        }
        if let Some(n) = self.node_of(index) {
            self.nodes[n as usize].entry = entry;
            self.unlink(n);
            self.push_front(n);
            return;
        }
        if self.len >= self.capacity {
            let victim = self.tail;
            self.remove_node(victim);
            self.stats.evictions += 1;
        }
        let node = CacheNode { index, entry, prev: NIL, next: NIL };
        let n = match self.free.pop() {
            Some(n) => {
                self.nodes[n as usize] = node;
                n
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() as u32 - 1
            }
        };
        self.slot[index as usize] = n;
        self.len += 1;
        self.push_front(n);
    }

    /// Executes one invalidation command; returns how many entries it dropped.
    pub fn invalidate(&mut self, scope: IecScope) -> u32 {
        self.stats.invalidations += 1;
        let mut dropped = 0u32;
        match scope {
            IecScope::Global => {
                while self.head != NIL {
                    self.remove_node(self.head);
                    dropped += 1;
                }
            }
            IecScope::Index { index, mask } => {
                let span = 1u64 << mask.min(32);
                let low = u64::from(index) & !(span - 1);
                let high = (low + span).min(self.slot.len() as u64);
                for i in low..high {
                    if let Some(n) = self.node_of(i as u32) {
                        self.remove_node(n);
                        dropped += 1;
                    }
                }
            }
        }
        self.stats.entries_invalidated += u64::from(dropped);
        dropped
    }

    pub(super) fn check_invariants(&self) -> Result<(), String> {
        if self.len > self.capacity {
            return Err(format!("cache holds {} entries, capacity {}", self.len, self.capacity));
        }
        let (mut n, mut prev, mut walked) = (self.head, NIL, 0u32);
        while n != NIL {
            let node = &self.nodes[n as usize];
            if node.prev != prev || self.slot[node.index as usize] != n {
                return Err(format!("cache node {n} for index {} is linked inconsistently", node.index));
            }
            walked += 1;
            if walked > self.len {
                return Err("cache list is longer than its length (a cycle?)".into());
            }
            (prev, n) = (n, node.next);
        }
        if walked != self.len || self.tail != prev {
            return Err(format!("cache list walks {walked} nodes, length {}", self.len));
        }
        let slotted = self.slot.iter().filter(|&&x| x != NIL).count();
        if slotted != self.len as usize {
            return Err(format!("cache has {slotted} slotted indices, length {}", self.len));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iommu::remap::testutil::*;
    use crate::iommu::remap::{CacheOutcome, RemapFault, RemapRequest, RemapUnit};

    #[test]
    fn cache_hits_misses_lru_and_invalidation() {
        let mut p = params();
        p.iec_entries = 2;
        let mut u = unit_with_entries(p, 5);
        let (hit, miss) = (p.iec_hit_latency, p.iec_miss_latency);
        let mut at = 0;
        let mut look = |u: &mut RemapUnit, h: u16| {
            at += 1;
            let t = u.translate(ns(at), IO, &RemapRequest::remappable(0, h, None));
            assert!(t.result.is_ok());
            (t.cache, t.latency)
        };
        assert_eq!(look(&mut u, 0), (CacheOutcome::Miss, miss));
        assert_eq!(look(&mut u, 0), (CacheOutcome::Hit, hit));
        assert_eq!(look(&mut u, 1), (CacheOutcome::Miss, miss));
        // Full: 2 evicts 0, the least recently used.
        assert_eq!(look(&mut u, 2), (CacheOutcome::Miss, miss));
        assert!(!u.cache(IO).contains(0) && u.cache(IO).contains(1));
        assert_eq!(look(&mut u, 1), (CacheOutcome::Hit, hit));
        // Now 2 is the least recently used.
        assert_eq!(look(&mut u, 0), (CacheOutcome::Miss, miss));
        assert!(!u.cache(IO).contains(2));
        let s = u.cache(IO).stats();
        assert_eq!((s.hits, s.misses, s.evictions), (2, 4, 2));
        assert_eq!(u.invalidate_iec(ns(6), IO, IecScope::Index { index: 1, mask: 0 }), 1);
        assert_eq!(look(&mut u, 1), (CacheOutcome::Miss, miss));
        // Not-present entries are not cached.
        let absent = u.translate(ns(60), IO, &RemapRequest::remappable(0, 9, None));
        assert_eq!((fault_of(&absent), absent.cache), (RemapFault::EntryNotPresent, CacheOutcome::Miss));
        assert!(!u.cache(IO).contains(9));

        // Masked and global invalidation on a bigger cache.
        let mut c = InterruptEntryCache::new(16);
        for i in 0..12 {
            c.insert(i, IrteEntry::NOT_PRESENT);
        }
        // Index 5 with mask 2 covers 4..8.
        assert_eq!(c.invalidate(IecScope::Index { index: 5, mask: 2 }), 4);
        assert!(c.contains(3) && !c.contains(4) && !c.contains(7) && c.contains(8));
        assert_eq!(c.invalidate(IecScope::Global), 8);
        assert!(c.is_empty());
        assert_eq!(c.stats().entries_invalidated, 12);
        let mut none = InterruptEntryCache::new(0);
        none.insert(1, IrteEntry::NOT_PRESENT);
        assert!(none.is_empty());
    }
}
