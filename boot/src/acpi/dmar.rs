//! The DMAR table (VT-d): one remapping unit with INCLUDE_PCI_ALL and the IOAPIC's device scope,
//! laid out as `include/acpi/actbl1.h` and the spec checklist §1.2 describe.

use acpi_tables::sdt::Sdt;
use resources::layout::IOAPIC_ID;

use super::{OEM_ID, OEM_REVISION, OEM_TABLE_ID};

/// The VT-d unit the DMAR describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmarConfig {
    /// Host address width in bits (39 or 48); the table stores width − 1.
    pub host_address_width: u8,
    /// Whether interrupt remapping is offered (DMAR flags bit 0).
    pub intr_remap: bool,
    /// Register base of the unit.
    pub register_base: u64,
}

const DRHD: u16 = 0;
const DRHD_INCLUDE_PCI_ALL: u8 = 1;
const SCOPE_IOAPIC: u8 = 3;
/// QEMU's pseudo source id for the IOAPIC scope: bus 0xff, device 0, function 0.
const IOAPIC_SCOPE_BUS: u8 = 0xff;

/// The DMAR bytes.
pub(super) fn build(config: &DmarConfig) -> Vec<u8> {
    let mut t = Sdt::new(*b"DMAR", 48, 1, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    t.write_u8(36, config.host_address_width.saturating_sub(1));
    t.write_u8(37, u8::from(config.intr_remap));
    // IOAPIC scope: type, length, reserved, enumeration id, start bus, path (device, function).
    let scope = [SCOPE_IOAPIC, 8, 0, 0, IOAPIC_ID, IOAPIC_SCOPE_BUS, 0, 0];
    let mut drhd = Vec::new();
    drhd.extend_from_slice(&DRHD.to_le_bytes());
    drhd.extend_from_slice(&((16 + scope.len()) as u16).to_le_bytes());
    drhd.push(DRHD_INCLUDE_PCI_ALL);
    drhd.push(0);
    drhd.extend_from_slice(&0u16.to_le_bytes()); // segment
    drhd.extend_from_slice(&config.register_base.to_le_bytes());
    drhd.extend_from_slice(&scope);
    t.append_slice(&drhd);
    t.as_slice().to_vec()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{checksum_ok, u32_at, u64_at};
    use super::*;

    #[test]
    fn layout_for_39_and_48_bits() {
        for (bits, ir) in [(39u8, false), (48, true)] {
            let t = build(&DmarConfig {
                host_address_width: bits,
                intr_remap: ir,
                register_base: 0xfed9_0000,
            });
            assert!(checksum_ok(&t));
            assert_eq!(&t[0..4], b"DMAR");
            assert_eq!(t[8], 1, "revision");
            assert_eq!(u32_at(&t, 4) as usize, t.len());
            assert_eq!(t[36], bits - 1, "HAW = width - 1");
            assert_eq!(t[37], u8::from(ir), "flags");
            assert!(t[38..48].iter().all(|b| *b == 0), "reserved");
            // DRHD at 48.
            assert_eq!(u16::from_le_bytes([t[48], t[49]]), 0, "type DRHD");
            let len = u16::from_le_bytes([t[50], t[51]]) as usize;
            assert_eq!(48 + len, t.len(), "DRHD length covers its scopes");
            assert_eq!(t[52] & 1, 1, "INCLUDE_PCI_ALL");
            assert_eq!(u16::from_le_bytes([t[54], t[55]]), 0, "segment");
            assert_eq!(u64_at(&t, 56), 0xfed9_0000, "register base");
            // IOAPIC scope at 64.
            assert_eq!(&t[64..72], &[3, 8, 0, 0, IOAPIC_ID, 0xff, 0, 0]);
        }
    }
}
