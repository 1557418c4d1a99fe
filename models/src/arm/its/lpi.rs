//! Linux's LPI range allocator (`alloc_lpi_range`, `free_lpi_range`, `its_lpi_alloc`).

use std::fmt;

use super::{LPI_INTID_BASE, Lpi};

/// One free range of LPI INTIDs, `[base, base + span)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LpiRange {
    /// First free INTID.
    pub base: u32,
    /// Number of free INTIDs.
    pub span: u32,
}

impl LpiRange {
    fn end(self) -> u32 {
        self.base + self.span
    }
}

/// The result of `its_lpi_alloc`: a contiguous block, possibly smaller than requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LpiGrant {
    /// First LPI of the block.
    pub base: Lpi,
    /// LPIs granted (the request halved until a free range fits).
    pub granted: u32,
    /// LPIs requested.
    pub requested: u32,
}

/// A free that does not match an earlier allocation (a bug in the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LpiFreeError {
    /// Freeing zero LPIs.
    Empty,
    /// The block lies (partly) outside the LPI space.
    OutOfRange {
        /// First LPI of the block.
        base: u32,
        /// Its length.
        span: u32,
    },
    /// The block overlaps LPIs that are already free (a double free).
    Overlap {
        /// First LPI of the block.
        base: u32,
        /// Its length.
        span: u32,
    },
}

impl fmt::Display for LpiFreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LpiFreeError::Empty => f.write_str("freeing zero LPIs"),
            LpiFreeError::OutOfRange { base, span } => write!(f, "LPIs {base}+{span} outside the LPI space"),
            LpiFreeError::Overlap { base, span } => write!(f, "LPIs {base}+{span} overlap free LPIs"),
        }
    }
}

impl std::error::Error for LpiFreeError {}

/// The kernel's LPI allocator: a list of free ranges sorted by base, first fit.
///
/// Allocation takes the first range that is large enough and shrinks it from the front;
/// freeing inserts the range in order and merges it with adjacent neighbours. The kernel's
/// comment: "allocation is cost is low, but freeing is expensive".
#[derive(Clone, Debug)]
pub struct LpiAllocator {
    ranges: Vec<LpiRange>,
    limit: u32,
    used: u32,
}

impl LpiAllocator {
    /// An allocator over `lpi_count` LPIs starting at INTID 8,192 (`its_lpi_init` frees the
    /// whole range into an empty list).
    pub fn new(lpi_count: u32) -> LpiAllocator {
        let mut a = LpiAllocator { ranges: Vec::new(), limit: lpi_count, used: lpi_count };
        if lpi_count > 0 {
            a.free(Lpi(LPI_INTID_BASE), lpi_count).expect("the initial range fits the LPI space");
        }
        a
    }

    /// `alloc_lpi_range`: the first free range of at least `n` LPIs, shrunk from its front.
    /// `None` is the kernel's `-ENOSPC`.
    pub fn alloc_range(&mut self, n: u32) -> Option<Lpi> {
        if n == 0 {
            return None;
        }
        let idx = self.ranges.iter().position(|r| r.span >= n)?;
        let range = &mut self.ranges[idx];
        let base = range.base;
        range.base += n;
        range.span -= n;
        if range.span == 0 {
            self.ranges.remove(idx);
        }
        self.used += n;
        Some(Lpi(base))
    }

    /// `its_lpi_alloc`: try `nr_irqs`, halving until a range fits. `None` when not even one
    /// LPI is free (or `nr_irqs` is 0).
    pub fn alloc(&mut self, nr_irqs: u32) -> Option<LpiGrant> {
        let mut n = nr_irqs;
        while n > 0 {
            if let Some(base) = self.alloc_range(n) {
                return Some(LpiGrant { base, granted: n, requested: nr_irqs });
            }
            n /= 2;
        }
        None
    }

    /// `free_lpi_range`: insert `[base, base + n)` after the last range with a smaller base,
    /// then merge with the preceding and following ranges if adjacent.
    pub fn free(&mut self, base: Lpi, n: u32) -> Result<(), LpiFreeError> {
        let base = base.0;
        if n == 0 {
            return Err(LpiFreeError::Empty);
        }
        let end = u64::from(base) + u64::from(n);
        if base < LPI_INTID_BASE || end > u64::from(LPI_INTID_BASE) + u64::from(self.limit) {
            return Err(LpiFreeError::OutOfRange { base, span: n });
        }
        let idx = self.ranges.partition_point(|r| r.base < base);
        let overlaps_prev = idx > 0 && self.ranges[idx - 1].end() > base;
        let overlaps_next = idx < self.ranges.len() && u64::from(self.ranges[idx].base) < end;
        if overlaps_prev || overlaps_next {
            return Err(LpiFreeError::Overlap { base, span: n });
        }
        self.ranges.insert(idx, LpiRange { base, span: n });
        // Merge with the following range first so `idx` stays valid, then with the preceding.
        if idx + 1 < self.ranges.len() && self.ranges[idx].end() == self.ranges[idx + 1].base {
            let next = self.ranges.remove(idx + 1);
            self.ranges[idx].span += next.span;
        }
        if idx > 0 && self.ranges[idx - 1].end() == self.ranges[idx].base {
            let cur = self.ranges.remove(idx);
            self.ranges[idx - 1].span += cur.span;
        }
        self.used -= n;
        Ok(())
    }

    /// LPIs currently allocated.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// Size of the LPI space.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// LPIs currently free.
    pub fn free_count(&self) -> u32 {
        self.limit - self.used
    }

    /// The free-range list, sorted by base.
    pub fn ranges(&self) -> &[LpiRange] {
        &self.ranges
    }

    /// The largest free range (what the next allocation can get at most).
    pub fn largest_free(&self) -> u32 {
        self.ranges.iter().map(|r| r.span).max().unwrap_or(0)
    }

    /// Whether `lpi` lies in a free range.
    pub fn is_free(&self, lpi: Lpi) -> bool {
        let idx = self.ranges.partition_point(|r| r.end() <= lpi.0);
        idx < self.ranges.len() && self.ranges[idx].base <= lpi.0
    }

    /// Panics if the free list is not sorted, disjoint, merged and within the LPI space, or
    /// if the counts disagree.
    pub fn check_invariants(&self) {
        let mut free = 0u64;
        for (i, r) in self.ranges.iter().enumerate() {
            assert!(r.span > 0, "empty free range {r:?}");
            assert!(r.base >= LPI_INTID_BASE, "free range {r:?} below the first LPI");
            assert!(
                u64::from(r.end()) <= u64::from(LPI_INTID_BASE) + u64::from(self.limit),
                "free range {r:?} beyond the LPI space"
            );
            if i > 0 {
                let prev = self.ranges[i - 1];
                assert!(prev.end() < r.base, "free ranges {prev:?} and {r:?} overlap or were not merged");
            }
            free += u64::from(r.span);
        }
        assert_eq!(free + u64::from(self.used), u64::from(self.limit), "free + used != limit");
    }
}
