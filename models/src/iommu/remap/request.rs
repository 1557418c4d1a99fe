//! The interrupt request as the remapping hardware decodes it ([`RemapRequest`] carrying an
//! [`InterruptMessage`]) and where a request that passes goes ([`RemapTarget`]).

use super::irte::PiDescId;
use crate::ids::{CpuId, Vector};

/// The interrupt message as the remapping hardware decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptMessage {
    /// A compatibility-format MSI (address bit 4 clear).
    Compatibility {
        /// Destination APIC id (8 bits in this format).
        dest_apic_id: u8,
        /// Vector in the data word.
        vector: Vector,
    },
    /// A remappable-format MSI (address bit 4 set).
    Remappable {
        /// The 16-bit handle (address bits 19:5 and 2).
        handle: u16,
        /// The subhandle from data\[15:0\], present when SHV is set; added to the handle.
        subhandle: Option<u16>,
        /// A reserved bit of the address or data is set (fault 0x20).
        reserved_bits_set: bool,
    },
}

/// The IRTE a remappable message selects: its handle, plus its subhandle when SHV is set
/// (VT-d's `interrupt_index`). Below 2^17; a table holds at most 2^16, so an index past
/// the table is the hardware's fault to report, not an overflow.
#[inline]
pub fn irte_index(handle: u16, subhandle: Option<u16>) -> u32 {
    u32::from(handle) + u32::from(subhandle.unwrap_or(0))
}

/// One interrupt request reaching the remapping hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemapRequest {
    /// The requester id (bus in bits 15:8, device/function in 7:0).
    pub requester_id: u16,
    /// The decoded message.
    pub message: InterruptMessage,
    /// The PASID the write was tagged with: hypothetical (SIOV sends MSIs without a PASID
    /// TLP prefix), compared only under [`super::RemapParams::pasid_checking`].
    pub pasid: Option<u32>,
}

impl RemapRequest {
    /// A well-formed remappable request.
    pub fn remappable(requester_id: u16, handle: u16, subhandle: Option<u16>) -> RemapRequest {
        RemapRequest {
            requester_id,
            message: InterruptMessage::Remappable { handle, subhandle, reserved_bits_set: false },
            pasid: None,
        }
    }

    /// The same request tagged with `pasid` (hypothetical PASID-tagged interrupts).
    pub fn with_pasid(self, pasid: Option<u32>) -> RemapRequest {
        RemapRequest { pasid, ..self }
    }

    /// A compatibility-format request.
    pub fn compatibility(requester_id: u16, dest_apic_id: u8, vector: Vector) -> RemapRequest {
        RemapRequest { requester_id, message: InterruptMessage::Compatibility { dest_apic_id, vector }, pasid: None }
    }
}

/// Where a request that passed the remapping hardware goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemapTarget {
    /// Deliver `vector` to CPU `dest`.
    Remapped {
        /// Destination CPU.
        dest: CpuId,
        /// Vector.
        vector: Vector,
    },
    /// Post `vector` into `descriptor` (the posted-interrupt model takes over).
    Posted {
        /// The posted-interrupt descriptor.
        descriptor: PiDescId,
        /// Virtual vector.
        vector: Vector,
        /// URG bit of the IRTE.
        urgent: bool,
    },
    /// A compatibility-format interrupt passed through untranslated (CFI set, xAPIC mode).
    Compatibility {
        /// Destination CPU.
        dest: CpuId,
        /// Vector.
        vector: Vector,
    },
}
