//! x86 MSI message formats: compatibility format and VT-d remappable format.
//!
//! # What is modelled
//! - Compatibility format: address `0xFEEx_xxxx` with the destination APIC id in bits 19:12,
//!   data = vector with fixed delivery mode and edge trigger.
//! - Remappable format (VT-d): address bit 4 = 1, `handle[14:0]` in bits 19:5, `handle[15]` in
//!   bit 2, SHV in bit 3 (docs/sources.md#remappable-msi-format, `MSI_ADDR_IR_*` in msidef.h).
//!   Linux programs one IRTE per vector and does not set SHV for MSI-X, so data is 0.
//!
//! # What is not modelled (and why)
//! Logical destination mode, redirection hint and lowest-priority delivery: Linux uses
//! physical fixed delivery for device MSIs since 4.15 (x86 vector management rework).

/// The x86 interrupt address window: bits 31:20 of every MSI address.
pub const MSI_ADDRESS_BASE: u64 = 0xFEE0_0000;
const ADDRESS_IR_FORMAT: u64 = 1 << 4;
const ADDRESS_IR_SHV: u64 = 1 << 3;

/// A decoded MSI write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsiMessage {
    /// Compatibility format: straight to `dest_apic_id`'s LAPIC with `vector`.
    Compat {
        /// Destination APIC id (8 bits in this format).
        dest_apic_id: u8,
        /// IDT vector.
        vector: u8,
    },
    /// Remappable format: the IRTE at `handle` (+ subhandle when SHV) decides.
    Remappable {
        /// Interrupt-remapping table index.
        handle: u16,
        /// Data bits 15:0, added to the handle when SHV is set.
        subhandle: Option<u16>,
    },
    /// Not an interrupt write (outside 0xFEEx_xxxx).
    NotInterrupt,
}

/// Composes a compatibility-format message.
pub fn compose_compat(dest_apic_id: u8, vector: u8) -> (u64, u32) {
    (MSI_ADDRESS_BASE | (u64::from(dest_apic_id) << 12), u32::from(vector))
}

/// Composes a remappable-format message for IRTE `handle` (no SHV, data 0).
pub fn compose_remappable(handle: u16) -> (u64, u32) {
    let handle = u64::from(handle);
    let address = MSI_ADDRESS_BASE | ((handle & 0x7fff) << 5) | ADDRESS_IR_FORMAT | ((handle >> 15) << 2);
    (address, 0)
}

/// Composes a remappable-format message with SHV set: IRTE `handle` + `subhandle` (the data
/// word), as multi-vector MSI uses (one address, consecutive data values).
pub fn compose_remappable_subhandle(handle: u16, subhandle: u16) -> (u64, u32) {
    let (address, _) = compose_remappable(handle);
    (address | ADDRESS_IR_SHV, u32::from(subhandle))
}

/// Decodes an MSI write as the interrupt-remapping hardware (or the LAPIC bus) sees it.
pub fn decode(address: u64, data: u32) -> MsiMessage {
    if address & 0xFFF0_0000 != MSI_ADDRESS_BASE || address >> 32 != 0 {
        return MsiMessage::NotInterrupt;
    }
    if address & ADDRESS_IR_FORMAT != 0 {
        let handle = (((address >> 5) & 0x7fff) | (((address >> 2) & 1) << 15)) as u16;
        let subhandle = (address & ADDRESS_IR_SHV != 0).then_some(data as u16);
        MsiMessage::Remappable { handle, subhandle }
    } else {
        MsiMessage::Compat { dest_apic_id: ((address >> 12) & 0xff) as u8, vector: data as u8 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let (a, d) = compose_compat(7, 0x41);
        assert_eq!(a, 0xFEE0_7000);
        assert_eq!(decode(a, d), MsiMessage::Compat { dest_apic_id: 7, vector: 0x41 });
        for handle in [0u16, 1, 0x7fff, 0x8000, 0xffff] {
            let (a, d) = compose_remappable(handle);
            assert_eq!(decode(a, d), MsiMessage::Remappable { handle, subhandle: None });
        }
        assert_eq!(decode(0x1000, 0), MsiMessage::NotInterrupt);
        let (a, d) = compose_remappable_subhandle(64, 3);
        assert_eq!(decode(a, d), MsiMessage::Remappable { handle: 64, subhandle: Some(3) });
    }
}
