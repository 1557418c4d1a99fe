//! Test helpers shared by the remapping tests: the parameters, units and times they build.

use sim::{SimDuration, SimTime};

use super::*;
use crate::ids::{CpuId, Vector};

pub(super) const IO: IommuId = IommuId(0);

pub(super) fn ns(n: u64) -> SimTime {
    SimTime::from_ps(n * 1_000)
}

pub(super) fn unsourced() -> RemapUnsourced {
    RemapUnsourced {
        max_handle_mask: 5,
        fault_recording_registers: 8,
        iec_entries: 4,
        iec_hit_latency: SimDuration::from_ns(20),
        iec_miss_latency: SimDuration::from_ns(200),
        irte_write: SimDuration::from_ns(100),
        irte_write_posted: SimDuration::from_ns(150),
        iec_invalidation: SimDuration::from_ns(2_000),
        irte_alloc: SimDuration::from_ns(50),
    }
}

pub(super) fn params() -> RemapParams {
    RemapParams::linux_defaults(unsourced())
}

pub(super) fn unit(p: RemapParams) -> RemapUnit {
    RemapUnit::new(p).expect("valid parameters")
}

/// A unit whose entries 0..n are present remapped entries (dest i, vector 0x40 + i),
/// written directly, without lock or timing.
pub(super) fn unit_with_entries(p: RemapParams, n: u32) -> RemapUnit {
    let mut u = unit(p);
    let table = u.table_mut(IO);
    for i in 0..n {
        let block = table.alloc_block(1).unwrap();
        assert_eq!(block.base, i);
        table.set_entry(i, IrteEntry::remapped(CpuId(i), Vector(0x40 + i as u8))).unwrap();
    }
    u
}

pub(super) fn fault_of(t: &Translation) -> RemapFault {
    t.result.expect_err("the request should be blocked")
}
