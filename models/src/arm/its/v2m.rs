//! The GICv2m MSI frame: a fixed pool of SPIs (`irq-gic-v2m.c`).

use std::fmt;

use super::{SpiId, count_order};

/// Lowest SPI INTID a frame may use (`V2M_MIN_SPI`).
pub const V2M_MIN_SPI: u32 = 32;
/// Highest SPI INTID a frame may reach (`V2M_MAX_SPI`).
pub const V2M_MAX_SPI: u32 = 1019;

/// Where the frame's SPIs start and how many there are (`MSI_TYPER`, or the
/// `arm,msi-base-spi` / `arm,msi-num-spis` overrides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V2mParams {
    /// First SPI INTID. The default, 256, is only an example placement: exhaustion depends
    /// on `nr_spis` alone, while alignment of multi-MSI blocks depends on this base.
    pub spi_start: u32,
    /// SPIs in the pool: 64 by default (gem5's VExpress frame; the pool one 128-queue NVMe
    /// device exhausted for a Rust VMM, docs/sources.md#gicv2m-spis).
    pub nr_spis: u32,
}

impl Default for V2mParams {
    fn default() -> Self {
        V2mParams { spi_start: 256, nr_spis: 64 }
    }
}

/// A frame description the kernel rejects at probe (`is_msi_spi_valid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V2mParamError {
    /// "Invalid MSI base SPI (base:%u)".
    BaseBelowMin(u32),
    /// "Number of SPIs (%u) exceed maximum (%u)" (also for zero SPIs).
    Count {
        /// SPIs asked for.
        nr_spis: u32,
        /// The maximum, `V2M_MAX_SPI - V2M_MIN_SPI + 1`.
        max: u32,
    },
}

impl fmt::Display for V2mParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V2mParamError::BaseBelowMin(b) => write!(f, "Invalid MSI base SPI (base:{b})"),
            V2mParamError::Count { nr_spis, max } => write!(f, "Number of SPIs ({nr_spis}) exceed maximum ({max})"),
        }
    }
}

impl std::error::Error for V2mParamError {}

/// A failed GICv2m allocation or free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V2mError {
    /// `gicv2m_irq_domain_alloc` found no aligned free block: `-ENOSPC`, nothing printed.
    NoSpace {
        /// SPIs asked for in this call.
        requested: u32,
    },
    /// A multi-MSI block must be a power of two (PCI multi-MSI allows 1, 2, 4, .., 32).
    NotPowerOfTwo(u32),
    /// Freeing SPIs that are not allocated as a block.
    BadFree {
        /// First SPI.
        spi: SpiId,
        /// Count.
        count: u32,
    },
}

impl V2mError {
    /// The kernel's error code.
    pub fn errno(&self) -> &'static str {
        match self {
            V2mError::NoSpace { .. } => "-ENOSPC",
            _ => "-EINVAL",
        }
    }
}

impl fmt::Display for V2mError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V2mError::NoSpace { requested } => write!(f, "GICv2m: no room for {requested} SPIs (-ENOSPC)"),
            V2mError::NotPowerOfTwo(n) => write!(f, "GICv2m: block of {n} SPIs is not a power of two"),
            V2mError::BadFree { spi, count } => write!(f, "GICv2m: SPIs {}+{count} not allocated", spi.0),
        }
    }
}

impl std::error::Error for V2mError {}

/// Usage of a GICv2m frame, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V2mResources {
    /// SPIs allocated.
    pub spis_used: u32,
    /// SPIs in the pool.
    pub spis_limit: u32,
    /// Most SPIs allocated at once.
    pub high_water: u32,
    /// Allocations refused with `-ENOSPC`.
    pub failed_allocations: u64,
}

/// One GICv2m frame and its SPI bitmap.
#[derive(Clone, Debug)]
pub struct V2mFrame {
    params: V2mParams,
    bm: Vec<bool>,
    used: u32,
    high_water: u32,
    failed: u64,
}

impl V2mFrame {
    /// A frame, checked as `is_msi_spi_valid` does.
    pub fn new(params: V2mParams) -> Result<V2mFrame, V2mParamError> {
        if params.spi_start < V2M_MIN_SPI {
            return Err(V2mParamError::BaseBelowMin(params.spi_start));
        }
        if params.nr_spis == 0 || u64::from(params.spi_start) + u64::from(params.nr_spis) > u64::from(V2M_MAX_SPI) {
            return Err(V2mParamError::Count { nr_spis: params.nr_spis, max: V2M_MAX_SPI - V2M_MIN_SPI + 1 });
        }
        Ok(V2mFrame { params, bm: vec![false; params.nr_spis as usize], used: 0, high_water: 0, failed: 0 })
    }

    /// `gicv2m_irq_domain_alloc`: `nr_irqs` consecutive SPIs (1 per MSI-X vector; a power of
    /// two for multi-MSI), aligned so that `spi_start + offset` is a multiple of `nr_irqs`.
    pub fn alloc(&mut self, nr_irqs: u32) -> Result<SpiId, V2mError> {
        if !nr_irqs.is_power_of_two() {
            return Err(V2mError::NotPowerOfTwo(nr_irqs));
        }
        let align_mask = nr_irqs as usize - 1;
        let spi_start = self.params.spi_start as usize;
        let align_off = spi_start - (spi_start & !align_mask);
        match find_zero_area(&self.bm, nr_irqs as usize, align_mask, align_off) {
            Some(offset) => {
                for b in &mut self.bm[offset..offset + nr_irqs as usize] {
                    *b = true;
                }
                self.used += nr_irqs;
                self.high_water = self.high_water.max(self.used);
                Ok(SpiId(self.params.spi_start + offset as u32))
            }
            None => {
                self.failed += 1;
                Err(V2mError::NoSpace { requested: nr_irqs })
            }
        }
    }

    /// `gicv2m_unalloc_msi`: release the `2^get_count_order(count)` block at `spi`.
    pub fn free(&mut self, spi: SpiId, count: u32) -> Result<(), V2mError> {
        let bad = V2mError::BadFree { spi, count };
        if count == 0 || spi.0 < self.params.spi_start {
            return Err(bad);
        }
        let size = 1usize << count_order(count);
        let offset = (spi.0 - self.params.spi_start) as usize;
        let block = self.bm.get_mut(offset..offset + size).ok_or(bad)?;
        if !block.iter().all(|&b| b) {
            return Err(bad);
        }
        block.fill(false);
        self.used -= size as u32;
        Ok(())
    }

    /// SPIs allocated.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// SPIs in the pool.
    pub fn limit(&self) -> u32 {
        self.params.nr_spis
    }

    /// Usage summary.
    pub fn resources(&self) -> V2mResources {
        V2mResources {
            spis_used: self.used,
            spis_limit: self.params.nr_spis,
            high_water: self.high_water,
            failed_allocations: self.failed,
        }
    }

    /// Panics if the counts disagree with the bitmap.
    pub fn check_invariants(&self) {
        let set = self.bm.iter().filter(|&&b| b).count() as u32;
        assert_eq!(set, self.used, "GICv2m bitmap and used count disagree");
        assert!(self.used <= self.high_water && self.high_water <= self.params.nr_spis);
    }
}

/// `bitmap_find_next_zero_area_off(map, size, 0, nr, align_mask, align_offset)`; `None` when
/// the returned index would be out of range.
fn find_zero_area(bm: &[bool], nr: usize, align_mask: usize, align_off: usize) -> Option<usize> {
    let size = bm.len();
    let mut start = 0;
    loop {
        let zero = (start..size).find(|&i| !bm[i]).unwrap_or(size);
        // __ALIGN_MASK(index + align_offset, align_mask) - align_offset
        let index = ((zero + align_off + align_mask) & !align_mask) - align_off;
        let end = index + nr;
        if end > size {
            return None;
        }
        match (index..end).find(|&i| bm[i]) {
            Some(busy) => start = busy + 1,
            None => return Some(index),
        }
    }
}
