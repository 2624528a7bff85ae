//! The MADT: one local APIC per vCPU, the IOAPIC, the SCI's interrupt source override, and
//! the LINT1 NMI.

use acpi_tables::sdt::Sdt;
use resources::layout::{IOAPIC_ID, IOAPIC_START, LAPIC_START};
use resources::ports::ACPI_SCI_IRQ;

use super::{OEM_ID, OEM_REVISION, OEM_TABLE_ID};

/// MADT flags: dual 8259s are present (KVM's in-kernel PIC).
const PCAT_COMPAT: u32 = 1;
const TYPE_LOCAL_APIC: u8 = 0;
const TYPE_IOAPIC: u8 = 1;
const TYPE_INTERRUPT_OVERRIDE: u8 = 2;
const TYPE_LOCAL_APIC_NMI: u8 = 4;
/// MPS INTI flags: active high, level triggered.
const LEVEL_ACTIVE_HIGH: u16 = 0b1101;

/// The MADT for `num_cpus` vCPUs with APIC ids 0..n.
pub(super) fn build(num_cpus: u8) -> Vec<u8> {
    let mut t = Sdt::new(*b"APIC", 44, 5, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    t.write_u32(36, LAPIC_START as u32);
    t.write_u32(40, PCAT_COMPAT);
    for id in 0..num_cpus {
        // type, length, ACPI processor UID, APIC id, flags (enabled)
        t.append_slice(&[TYPE_LOCAL_APIC, 8, id, id, 1, 0, 0, 0]);
    }
    let mut ioapic = vec![TYPE_IOAPIC, 12, IOAPIC_ID, 0];
    ioapic.extend_from_slice(&(IOAPIC_START as u32).to_le_bytes());
    ioapic.extend_from_slice(&0u32.to_le_bytes()); // GSI base
    t.append_slice(&ioapic);
    // The SCI is level-triggered, active high (ACPI's default would be active low). No override
    // for IRQ 0: KVM routes the PIT to IOAPIC pin 0, which is the identity mapping.
    let mut iso = vec![TYPE_INTERRUPT_OVERRIDE, 10, 0, ACPI_SCI_IRQ as u8];
    iso.extend_from_slice(&ACPI_SCI_IRQ.to_le_bytes());
    iso.extend_from_slice(&LEVEL_ACTIVE_HIGH.to_le_bytes());
    t.append_slice(&iso);
    // All processors (0xff), flags 0 (bus default), LINT1.
    t.append_slice(&[TYPE_LOCAL_APIC_NMI, 6, 0xff, 0, 0, 1]);
    t.as_slice().to_vec()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{checksum_ok, u32_at};
    use super::*;

    fn entries(t: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut pos = 44;
        while pos < t.len() {
            let (kind, len) = (t[pos], t[pos + 1] as usize);
            assert!(len >= 2 && pos + len <= t.len(), "entry at {pos} overruns");
            out.push((kind, t[pos..pos + len].to_vec()));
            pos += len;
        }
        out
    }

    #[test]
    fn one_and_four_cpus() {
        for n in [1u8, 4] {
            let t = build(n);
            assert!(checksum_ok(&t));
            assert_eq!(&t[0..4], b"APIC");
            assert_eq!(u32_at(&t, 4) as usize, t.len());
            assert_eq!(u32_at(&t, 36), 0xfee0_0000);
            assert_eq!(u32_at(&t, 40) & 1, 1, "PCAT_COMPAT");
            let e = entries(&t);
            let lapics: Vec<_> = e.iter().filter(|(k, _)| *k == TYPE_LOCAL_APIC).collect();
            assert_eq!(lapics.len(), n as usize);
            for (i, (_, l)) in lapics.iter().enumerate() {
                assert_eq!((l[2], l[3], l[4] & 1), (i as u8, i as u8, 1));
            }
            let io = &e.iter().find(|(k, _)| *k == TYPE_IOAPIC).unwrap().1;
            assert_eq!(
                (io[2], u32_at(io, 4), u32_at(io, 8)),
                (IOAPIC_ID, 0xfec0_0000, 0)
            );
            let iso = &e
                .iter()
                .find(|(k, _)| *k == TYPE_INTERRUPT_OVERRIDE)
                .unwrap()
                .1;
            assert_eq!((iso[3], u32_at(iso, 4)), (9, 9));
            assert_eq!(u16::from_le_bytes([iso[8], iso[9]]), 0b1101);
            assert!(
                e.iter()
                    .any(|(k, v)| *k == TYPE_LOCAL_APIC_NMI && v[5] == 1)
            );
        }
    }
}
