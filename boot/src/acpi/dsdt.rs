//! The DSDT: the PCI host bridge with its windows and interrupt routing, a motherboard-resources
//! device claiming the ECAM window (Linux uses MMCONFIG only when it is reserved), and `\_S5`
//! for power-off. Kept small: the guest interprets every byte of it.

use acpi_tables::Aml;
use acpi_tables::aml::{
    AddressSpace, AddressSpaceCacheable, Device, EISAName, IO, Memory32Fixed, Name, Package,
    ResourceTemplate,
};
use acpi_tables::sdt::Sdt;
use resources::layout::{
    PCI_ECAM_LAST_BUS, PCI_ECAM_SIZE, PCI_ECAM_START, PCI_MMIO32_SIZE, PCI_MMIO32_START,
    PCI_MMIO64_SIZE, PCI_MMIO64_START,
};
use resources::ports::{ACPI_S5_SLP_TYP, PCI_CONFIG_ADDRESS, pci_intx_gsi};

use super::{OEM_ID, OEM_REVISION, OEM_TABLE_ID};

/// Slots whose INTx lines `_PRT` routes (slot 0 is the host bridge).
const ROUTED_SLOTS: std::ops::RangeInclusive<u8> = 1..=31;

/// The DSDT bytes.
pub(super) fn build() -> Vec<u8> {
    // Revision 2: 64-bit integers (the 64-bit window needs them).
    let mut table = Sdt::new(*b"DSDT", 36, 2, OEM_ID, OEM_TABLE_ID, OEM_REVISION);

    let buses = AddressSpace::new_bus_number(0u16, u16::from(PCI_ECAM_LAST_BUS));
    let config_ports = IO::new(PCI_CONFIG_ADDRESS, PCI_CONFIG_ADDRESS, 1, 8);
    let io_below = AddressSpace::new_io(0u16, PCI_CONFIG_ADDRESS - 1, None);
    let io_above = AddressSpace::new_io(PCI_CONFIG_ADDRESS + 8, 0xffffu16, None);
    let mmio32 = AddressSpace::new_memory(
        AddressSpaceCacheable::NotCacheable,
        true,
        PCI_MMIO32_START as u32,
        (PCI_MMIO32_START + PCI_MMIO32_SIZE - 1) as u32,
        None,
    );
    let mmio64 = AddressSpace::new_memory(
        AddressSpaceCacheable::NotCacheable,
        true,
        PCI_MMIO64_START,
        PCI_MMIO64_START + PCI_MMIO64_SIZE - 1,
        None,
    );
    let crs = ResourceTemplate::new(vec![
        &buses,
        &config_ports,
        &io_below,
        &io_above,
        &mmio32,
        &mmio64,
    ]);

    // _PRT: {address = slot << 16 | 0xffff, pin, source 0 (a GSI), GSI}.
    let routes: Vec<(u32, u8, u32)> = ROUTED_SLOTS
        .flat_map(|slot| {
            (0..4u8).map(move |pin| {
                (
                    (u32::from(slot) << 16) | 0xffff,
                    pin,
                    pci_intx_gsi(slot, pin),
                )
            })
        })
        .collect();
    let zero = 0u8;
    let route_packages: Vec<Package<'_>> = routes
        .iter()
        .map(|(addr, pin, gsi)| Package::new(vec![addr, pin, &zero, gsi]))
        .collect();
    let prt = Package::new(route_packages.iter().map(|p| p as &dyn Aml).collect());

    let hid = EISAName::new("PNP0A08");
    let cid = EISAName::new("PNP0A03");
    let pci0_names = [
        Name::new("_HID".into(), &hid),
        Name::new("_CID".into(), &cid),
        Name::new("_ADR".into(), &zero),
        Name::new("_SEG".into(), &zero),
        Name::new("_BBN".into(), &zero),
        Name::new("_UID".into(), &zero),
        Name::new("_CRS".into(), &crs),
        Name::new("_PRT".into(), &prt),
    ];
    let pci0 = Device::new(
        "_SB_.PCI0".into(),
        pci0_names.iter().map(|n| n as &dyn Aml).collect(),
    );

    let ecam = Memory32Fixed::new(false, PCI_ECAM_START as u32, PCI_ECAM_SIZE as u32);
    let ecam_crs = ResourceTemplate::new(vec![&ecam]);
    let mres_hid = EISAName::new("PNP0C02");
    let one = 1u8;
    let mres_names = [
        Name::new("_HID".into(), &mres_hid),
        Name::new("_UID".into(), &one),
        Name::new("_CRS".into(), &ecam_crs),
    ];
    let mres = Device::new(
        "_SB_.MRES".into(),
        mres_names.iter().map(|n| n as &dyn Aml).collect(),
    );

    let slp_typ = ACPI_S5_SLP_TYP as u8;
    let s5_package = Package::new(vec![&slp_typ, &slp_typ, &zero, &zero]);
    let s5 = Name::new("_S5_".into(), &s5_package);

    for object in [&pci0 as &dyn Aml, &mres, &s5] {
        object.to_aml_bytes(&mut table);
    }
    table.update_checksum();
    table.as_slice().to_vec()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{checksum_ok, u32_at};
    use super::*;

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn header_names_and_checksum() {
        let t = build();
        assert_eq!(&t[0..4], b"DSDT");
        assert_eq!(u32_at(&t, 4) as usize, t.len());
        assert_eq!(t[8], 2, "revision 2 for 64-bit integers");
        assert!(checksum_ok(&t));
        for name in [
            &b"PCI0"[..],
            b"_HID",
            b"_CRS",
            b"_PRT",
            b"MRES",
            b"_S5_",
            b"_SEG",
            b"_BBN",
        ] {
            assert!(contains(&t, name), "{}", String::from_utf8_lossy(name));
        }
        // EISA id of PNP0A08, as AML encodes it (DWordPrefix + 0x080AD041).
        assert!(contains(&t, &[0x0c, 0x41, 0xd0, 0x0a, 0x08]));
        // The ECAM window appears in the motherboard resources (Memory32Fixed: 0x86, len 9).
        let mut fixed = vec![0x86, 0x09, 0x00, 0x00];
        fixed.extend_from_slice(&(PCI_ECAM_START as u32).to_le_bytes());
        fixed.extend_from_slice(&(PCI_ECAM_SIZE as u32).to_le_bytes());
        assert!(contains(&t, &fixed));
        assert!(t.len() < 8192, "DSDT grew to {} bytes", t.len());
    }

    #[test]
    fn iasl_accepts_it_when_available() {
        let dir = std::env::temp_dir().join(format!("iovmm-dsdt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dsdt.aml");
        std::fs::write(&path, build()).unwrap();
        let out = match std::process::Command::new("iasl")
            .arg("-d")
            .arg(&path)
            .output()
        {
            Ok(o) => o,
            Err(_) => {
                eprintln!("SKIPPED: iasl (acpica-tools) is not installed");
                return;
            }
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dsl = std::fs::read_to_string(dir.join("dsdt.dsl")).unwrap();
        assert!(dsl.contains("Device (PCI0)"), "{dsl}");
        assert!(dsl.contains("EisaId (\"PNP0A08\")"), "{dsl}");
        assert!(dsl.contains("Name (_S5, Package"), "{dsl}");
    }
}
