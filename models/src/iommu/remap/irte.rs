//! The IRTE format: one interrupt-remapping table entry ([`IrteEntry`]) in remapped or
//! posted format ([`IrteMode`]), its source-id validation fields ([`SourceValidation`] with
//! [`SourceQualifier`]), the posted-interrupt descriptor handle ([`PiDescId`]) and the
//! platform's short form of a remapped entry ([`Irte`]).

use crate::ids::{CpuId, Vector};

/// A remapped-format IRTE as the platform sets it up: destination and vector only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Irte {
    /// Destination APIC id (32 bits in x2APIC mode).
    pub dest_apic_id: u32,
    /// IDT vector delivered at the destination.
    pub vector: u8,
}

/// A posted-interrupt descriptor, standing for the PDA field of a posted IRTE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PiDescId(pub u32);

/// The SQ field: which requester-id bits SVT=1 verification compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceQualifier {
    /// SQ=0: all 16 bits (`SQ_ALL_16`).
    All16,
    /// SQ=1: ignore bit 2 (`SQ_13_IGNORE_1`).
    IgnoreBit2,
    /// SQ=2: ignore bits 2:1 (`SQ_13_IGNORE_2`).
    IgnoreBits2To1,
    /// SQ=3: ignore bits 2:0, the whole function number (`SQ_13_IGNORE_3`).
    IgnoreBits2To0,
}

impl SourceQualifier {
    /// The 2-bit SQ field value.
    pub fn code(self) -> u8 {
        match self {
            SourceQualifier::All16 => 0,
            SourceQualifier::IgnoreBit2 => 1,
            SourceQualifier::IgnoreBits2To1 => 2,
            SourceQualifier::IgnoreBits2To0 => 3,
        }
    }

    /// The qualifier for a 2-bit field value, `None` above 3.
    pub fn from_code(code: u8) -> Option<SourceQualifier> {
        match code {
            0 => Some(SourceQualifier::All16),
            1 => Some(SourceQualifier::IgnoreBit2),
            2 => Some(SourceQualifier::IgnoreBits2To1),
            3 => Some(SourceQualifier::IgnoreBits2To0),
            _ => None,
        }
    }

    /// The requester-id bits that are compared.
    pub fn compare_mask(self) -> u16 {
        match self {
            SourceQualifier::All16 => 0xffff,
            SourceQualifier::IgnoreBit2 => 0xfffb,
            SourceQualifier::IgnoreBits2To1 => 0xfff9,
            SourceQualifier::IgnoreBits2To0 => 0xfff8,
        }
    }
}

/// The SVT field and the SID/SQ values it uses: how the requester id is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceValidation {
    /// SVT=0: no verification.
    None,
    /// SVT=1: the requester id must equal `sid` in the bits `sq` selects.
    RequesterId {
        /// The SID field: bus in bits 15:8, device/function in 7:0.
        sid: u16,
        /// The SQ field.
        sq: SourceQualifier,
    },
    /// SVT=2: the requester's bus must lie in `start_bus..=end_bus` (SID\[15:8\], SID\[7:0\]).
    BusRange {
        /// First accepted bus.
        start_bus: u8,
        /// Last accepted bus.
        end_bus: u8,
    },
    /// SVT=3: a reserved encoding; the hardware reports reserved fields in the IRTE (0x24).
    Reserved,
}

impl SourceValidation {
    /// The 2-bit SVT field value.
    pub fn svt(self) -> u8 {
        match self {
            SourceValidation::None => 0,
            SourceValidation::RequesterId { .. } => 1,
            SourceValidation::BusRange { .. } => 2,
            SourceValidation::Reserved => 3,
        }
    }

    /// The 16-bit SID field value.
    pub fn sid_field(self) -> u16 {
        match self {
            SourceValidation::RequesterId { sid, .. } => sid,
            SourceValidation::BusRange { start_bus, end_bus } => u16::from(start_bus) << 8 | u16::from(end_bus),
            SourceValidation::None | SourceValidation::Reserved => 0,
        }
    }

    /// Whether a request from `requester_id` passes verification (a reserved SVT never does).
    pub fn accepts(self, requester_id: u16) -> bool {
        match self {
            SourceValidation::None => true,
            SourceValidation::RequesterId { sid, sq } => (requester_id ^ sid) & sq.compare_mask() == 0,
            SourceValidation::BusRange { start_bus, end_bus } => {
                let bus = (requester_id >> 8) as u8;
                (start_bus..=end_bus).contains(&bus)
            }
            SourceValidation::Reserved => false,
        }
    }
}

/// The format-specific part of an IRTE (the IM bit chooses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrteMode {
    /// IM=0, remapped format: the interrupt goes to a CPU.
    Remapped {
        /// Destination (APIC id; on x86 it equals the CPU index).
        dest: CpuId,
        /// IDT vector at the destination.
        vector: Vector,
    },
    /// IM=1, posted format: the interrupt is posted into a descriptor.
    Posted {
        /// The posted-interrupt descriptor (the PDA field).
        descriptor: PiDescId,
        /// Virtual vector posted into the descriptor's PIR.
        vector: Vector,
        /// URG: notify even when the descriptor's SN bit is set.
        urgent: bool,
    },
}

/// One interrupt-remapping table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrteEntry {
    /// P: the entry is valid.
    pub present: bool,
    /// FPD: faults through this entry are not recorded (the request is still blocked).
    pub fpd: bool,
    /// The remapped or posted fields.
    pub mode: IrteMode,
    /// SVT, SID and SQ.
    pub source: SourceValidation,
    /// Some reserved bit is non-zero (a software bug the hardware reports as 0x24).
    pub reserved_bits_set: bool,
    /// The PASID of the function the entry was written for: hypothetical (VT-d's IRTE has
    /// no such field), checked only under [`super::RemapParams::pasid_checking`].
    pub pasid: Option<u32>,
}

impl IrteEntry {
    /// An all-zero entry, as Linux leaves a free or deactivated one.
    pub const NOT_PRESENT: IrteEntry = IrteEntry {
        present: false,
        fpd: false,
        mode: IrteMode::Remapped { dest: CpuId(0), vector: Vector(0) },
        source: SourceValidation::None,
        reserved_bits_set: false,
        pasid: None,
    };

    /// A present remapped-format entry without source verification.
    pub fn remapped(dest: CpuId, vector: Vector) -> IrteEntry {
        IrteEntry { present: true, mode: IrteMode::Remapped { dest, vector }, ..IrteEntry::NOT_PRESENT }
    }

    /// A present posted-format entry without source verification.
    pub fn posted(descriptor: PiDescId, vector: Vector, urgent: bool) -> IrteEntry {
        IrteEntry { present: true, mode: IrteMode::Posted { descriptor, vector, urgent }, ..IrteEntry::NOT_PRESENT }
    }

    /// The same entry with source verification `source`.
    pub fn with_source(self, source: SourceValidation) -> IrteEntry {
        IrteEntry { source, ..self }
    }

    /// The same entry tagged with `pasid` (hypothetical PASID-granular remapping).
    pub fn with_pasid(self, pasid: Option<u32>) -> IrteEntry {
        IrteEntry { pasid, ..self }
    }

    /// The same entry with FPD set to `fpd`.
    pub fn with_fpd(self, fpd: bool) -> IrteEntry {
        IrteEntry { fpd, ..self }
    }

    /// Whether the entry is in posted format (IM=1).
    pub fn is_posted(&self) -> bool {
        matches!(self.mode, IrteMode::Posted { .. })
    }
}

impl From<Irte> for IrteEntry {
    fn from(irte: Irte) -> IrteEntry {
        IrteEntry::remapped(CpuId(irte.dest_apic_id), Vector(irte.vector))
    }
}

/// An [`IrteEntry`] as a table holds it: 16 bytes, the size of VT-d's 128-bit IRTE
/// (docs/sources.md#irte-table-size), aligned
/// so that no entry straddles two cache lines (a lookup misses at most one line; at a
/// million queues every lookup misses). [`IrteEntry`] itself is 24 bytes: one table entry
/// in four straddled two lines (benches/runs/2026-11-30-scale-soa.md). Lossless: `get`
/// returns the entry `new` was given; the all-zero value is [`IrteEntry::NOT_PRESENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C, align(16))]
pub(super) struct PackedIrte {
    /// Bit 0 present, 1 FPD, 2 a reserved bit set, 3 posted format, 4 urgent, 5 a PASID
    /// tag; bits 7:6 SVT, 9:8 SQ, 23:16 the vector, 47:32 the SID field.
    flags: u64,
    /// The destination APIC id (remapped) or descriptor (posted).
    target: u32,
    /// The PASID tag, when bit 5 says there is one.
    pasid: u32,
}

const _: () = assert!(std::mem::size_of::<PackedIrte>() == 16);

impl PackedIrte {
    const PRESENT: u64 = 1;
    const FPD: u64 = 1 << 1;
    const RESERVED: u64 = 1 << 2;
    const POSTED: u64 = 1 << 3;
    const URGENT: u64 = 1 << 4;
    const PASID: u64 = 1 << 5;

    /// An entry packed.
    pub fn new(e: IrteEntry) -> PackedIrte {
        let bit = |set: bool, b: u64| if set { b } else { 0 };
        let (posted, urgent, vector, target) = match e.mode {
            IrteMode::Remapped { dest, vector } => (false, false, vector.0, dest.0),
            IrteMode::Posted { descriptor, vector, urgent } => (true, urgent, vector.0, descriptor.0),
        };
        let sq = match e.source {
            SourceValidation::RequesterId { sq, .. } => sq.code(),
            _ => 0,
        };
        let flags = bit(e.present, Self::PRESENT)
            | bit(e.fpd, Self::FPD)
            | bit(e.reserved_bits_set, Self::RESERVED)
            | bit(posted, Self::POSTED)
            | bit(urgent, Self::URGENT)
            | bit(e.pasid.is_some(), Self::PASID)
            | u64::from(e.source.svt()) << 6
            | u64::from(sq) << 8
            | u64::from(vector) << 16
            | u64::from(e.source.sid_field()) << 32;
        PackedIrte { flags, target, pasid: e.pasid.unwrap_or(0) }
    }

    /// The entry.
    #[inline]
    pub fn get(self) -> IrteEntry {
        let f = self.flags;
        let vector = Vector((f >> 16) as u8);
        let sid = (f >> 32) as u16;
        let mode = if f & Self::POSTED != 0 {
            IrteMode::Posted { descriptor: PiDescId(self.target), vector, urgent: f & Self::URGENT != 0 }
        } else {
            IrteMode::Remapped { dest: CpuId(self.target), vector }
        };
        let source = match (f >> 6) & 3 {
            0 => SourceValidation::None,
            1 => {
                let sq = match (f >> 8) & 3 {
                    0 => SourceQualifier::All16,
                    1 => SourceQualifier::IgnoreBit2,
                    2 => SourceQualifier::IgnoreBits2To1,
                    _ => SourceQualifier::IgnoreBits2To0,
                };
                SourceValidation::RequesterId { sid, sq }
            }
            2 => SourceValidation::BusRange { start_bus: (sid >> 8) as u8, end_bus: sid as u8 },
            _ => SourceValidation::Reserved,
        };
        IrteEntry {
            present: f & Self::PRESENT != 0,
            fpd: f & Self::FPD != 0,
            mode,
            source,
            reserved_bits_set: f & Self::RESERVED != 0,
            pasid: (f & Self::PASID != 0).then_some(self.pasid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_id_verification_for_every_sq_and_bus_ranges() {
        // SID 0x1234: bus 0x12, device 6, function 4. Flip one bit of the requester id at a
        // time: SQ=0 compares every bit; SQ=1 ignores bit 2; SQ=2 bits 2:1; SQ=3 bits 2:0.
        let sid = 0x1234u16;
        let flips = [0u16, 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 8, (1 << 1) | (1 << 2)];
        let accept = [
            (SourceQualifier::All16, [true, false, false, false, false, false, false]),
            (SourceQualifier::IgnoreBit2, [true, false, false, true, false, false, false]),
            (SourceQualifier::IgnoreBits2To1, [true, false, true, true, false, false, true]),
            (SourceQualifier::IgnoreBits2To0, [true, true, true, true, false, false, true]),
        ];
        for (sq, row) in accept {
            assert_eq!(SourceQualifier::from_code(sq.code()), Some(sq));
            let v = SourceValidation::RequesterId { sid, sq };
            for (flip, want) in flips.iter().zip(row) {
                assert_eq!(v.accepts(sid ^ flip), want, "sq {} flip {flip:#x}", sq.code());
            }
            assert_eq!((v.svt(), v.sid_field()), (1, sid));
        }
        // SVT=2: buses 0x10..=0x20, any device/function.
        let range = SourceValidation::BusRange { start_bus: 0x10, end_bus: 0x20 };
        assert_eq!((range.svt(), range.sid_field()), (2, 0x1020));
        for (rid, want) in [(0x0fff, false), (0x1000, true), (0x18a5, true), (0x20ff, true), (0x2100, false)] {
            assert_eq!(range.accepts(rid), want, "rid {rid:#06x}");
        }
        let single = SourceValidation::BusRange { start_bus: 5, end_bus: 5 };
        assert!(single.accepts(0x0507) && !single.accepts(0x0607) && !single.accepts(0x0407));
        let empty = SourceValidation::BusRange { start_bus: 6, end_bus: 5 };
        assert!(!empty.accepts(0x0500) && !empty.accepts(0x0600));
        assert!(SourceValidation::None.accepts(0xffff));
        assert!(!SourceValidation::Reserved.accepts(0));
    }
    #[test]
    fn a_packed_entry_is_the_entry() {
        assert_eq!(PackedIrte::default().get(), IrteEntry::NOT_PRESENT);
        assert_eq!(PackedIrte::new(IrteEntry::NOT_PRESENT), PackedIrte::default());
        let modes = [
            IrteMode::Remapped { dest: CpuId(0), vector: Vector(0) },
            IrteMode::Remapped { dest: CpuId(u32::MAX), vector: Vector(0xff) },
            IrteMode::Posted { descriptor: PiDescId(7), vector: Vector(0x31), urgent: false },
            IrteMode::Posted { descriptor: PiDescId(u32::MAX), vector: Vector(0xff), urgent: true },
        ];
        let mut sources = vec![
            SourceValidation::None,
            SourceValidation::Reserved,
            SourceValidation::BusRange { start_bus: 0, end_bus: 0xff },
            SourceValidation::BusRange { start_bus: 0xfe, end_bus: 1 },
        ];
        for code in 0..4 {
            let sq = SourceQualifier::from_code(code).unwrap();
            sources.extend([0, 0x1234, 0xffff].map(|sid| SourceValidation::RequesterId { sid, sq }));
        }
        let mut n = 0;
        for mode in modes {
            for &source in &sources {
                for pasid in [None, Some(0), Some(0x000f_ffff), Some(u32::MAX)] {
                    for bits in 0..8u8 {
                        let e = IrteEntry {
                            present: bits & 1 != 0,
                            fpd: bits & 2 != 0,
                            mode,
                            source,
                            reserved_bits_set: bits & 4 != 0,
                            pasid,
                        };
                        assert_eq!(PackedIrte::new(e).get(), e);
                        n += 1;
                    }
                }
            }
        }
        // 4 modes x 16 sources x 4 PASIDs x 8 flag combinations.
        assert_eq!(n, 4 * 16 * 4 * 8);
    }
}
