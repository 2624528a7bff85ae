//! ACPI tables: RSDP, XSDT, FADT, FACS, DSDT, MADT, MCFG and (with an IOMMU) DMAR, placed from
//! `ACPI_START` where the guest finds the RSDP by scanning as well as through the boot
//! parameters.

mod dmar;
mod dsdt;
mod fadt;
mod madt;

use acpi_tables::mcfg::MCFG;
use acpi_tables::rsdp::Rsdp;
use acpi_tables::xsdt::XSDT;
use acpi_tables::{Aml, facs::FACS};
use resources::layout::{ACPI_END, ACPI_START, PCI_ECAM_LAST_BUS, PCI_ECAM_START};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

pub use dmar::DmarConfig;

use crate::Error;

/// OEM id in every table.
pub(crate) const OEM_ID: [u8; 6] = *b"IOVMM ";
/// OEM table id in every table.
pub(crate) const OEM_TABLE_ID: [u8; 8] = *b"IOVMMVM ";
/// OEM revision in every table.
pub(crate) const OEM_REVISION: u32 = 1;

/// What the tables describe.
#[derive(Clone, Debug, Default)]
pub struct AcpiConfig {
    /// Number of vCPUs (APIC ids 0..n).
    pub num_cpus: u8,
    /// The DMA-remapping unit, if the VM has one.
    pub dmar: Option<DmarConfig>,
}

fn to_bytes(table: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    table.to_aml_bytes(&mut v);
    v
}

/// Lays tables out one after the other, each aligned as ACPI wants.
struct Placer {
    next: u64,
    blobs: Vec<(u64, Vec<u8>)>,
}

impl Placer {
    fn place(&mut self, bytes: Vec<u8>, align: u64) -> u64 {
        let at = self.next.div_ceil(align) * align;
        self.next = at + bytes.len() as u64;
        self.blobs.push((at, bytes));
        at
    }
}

/// Builds every table and writes them to guest memory; returns the RSDP address.
pub fn build_acpi_tables(mem: &GuestMemoryMmap, config: &AcpiConfig) -> Result<u64, Error> {
    // The RSDP goes first, 16-byte aligned, so a scan of 0xe0000.. finds it.
    let rsdp_addr = ACPI_START;
    let mut placer = Placer {
        next: rsdp_addr + Rsdp::len() as u64,
        blobs: Vec::new(),
    };
    let facs = placer.place(to_bytes(&FACS::new()), 64);
    let dsdt = placer.place(dsdt::build(), 8);
    let fadt = placer.place(fadt::build(dsdt, facs), 8);
    let madt = placer.place(madt::build(config.num_cpus), 8);
    let mut mcfg = MCFG::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    mcfg.add_ecam(PCI_ECAM_START, 0, 0, PCI_ECAM_LAST_BUS);
    let mcfg = placer.place(to_bytes(&mcfg), 8);
    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    for table in [fadt, madt, mcfg] {
        xsdt.add_entry(table);
    }
    if let Some(dmar) = &config.dmar {
        xsdt.add_entry(placer.place(dmar::build(dmar), 8));
    }
    let xsdt = placer.place(to_bytes(&xsdt), 8);
    placer
        .blobs
        .push((rsdp_addr, to_bytes(&Rsdp::new(OEM_ID, xsdt))));

    if placer.next > ACPI_END {
        return Err(Error::AcpiTooLarge {
            need: (placer.next - ACPI_START) as usize,
            room: (ACPI_END - ACPI_START) as usize,
            end: ACPI_END,
        });
    }
    for (addr, bytes) in &placer.blobs {
        mem.write_slice(bytes, GuestAddress(*addr))
            .map_err(|_| Error::GuestMemory {
                what: "an ACPI table",
                addr: *addr,
            })?;
    }
    Ok(rsdp_addr)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn checksum_ok(bytes: &[u8]) -> bool {
        bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
    }

    pub(crate) fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }

    pub(crate) fn u64_at(b: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }

    /// Reads the table at `addr` (its length from the header).
    pub(crate) fn read_table(m: &GuestMemoryMmap, addr: u64) -> Vec<u8> {
        let mut head = [0u8; 8];
        m.read_slice(&mut head, GuestAddress(addr)).unwrap();
        let len = u32_at(&head, 4) as usize;
        let mut t = vec![0u8; len];
        m.read_slice(&mut t, GuestAddress(addr)).unwrap();
        t
    }

    /// Builds the tables and returns them by signature, after checking RSDP and XSDT.
    pub(crate) fn tables(config: &AcpiConfig) -> (GuestMemoryMmap, Vec<(String, u64, Vec<u8>)>) {
        let m = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 2 << 20)]).unwrap();
        let rsdp_addr = build_acpi_tables(&m, config).unwrap();
        assert_eq!(rsdp_addr % 16, 0);
        let mut rsdp = [0u8; 36];
        m.read_slice(&mut rsdp, GuestAddress(rsdp_addr)).unwrap();
        assert_eq!(&rsdp[0..8], b"RSD PTR ");
        assert!(checksum_ok(&rsdp[..20]), "RSDP checksum");
        assert!(checksum_ok(&rsdp), "RSDP extended checksum");
        assert_eq!(rsdp[15], 2, "RSDP revision");
        let xsdt = read_table(&m, u64_at(&rsdp, 24));
        assert_eq!(&xsdt[0..4], b"XSDT");
        assert!(checksum_ok(&xsdt));
        let mut out = Vec::new();
        for i in 0..(xsdt.len() - 36) / 8 {
            let addr = u64_at(&xsdt, 36 + 8 * i);
            let t = read_table(&m, addr);
            assert!(checksum_ok(&t), "checksum of table at {addr:#x}");
            assert!(addr + t.len() as u64 <= ACPI_END);
            out.push((String::from_utf8_lossy(&t[0..4]).into_owned(), addr, t));
        }
        (m, out)
    }

    #[test]
    fn xsdt_lists_fadt_madt_mcfg_and_dmar_only_when_asked() {
        let (_, t) = tables(&AcpiConfig {
            num_cpus: 1,
            dmar: None,
        });
        let sigs: Vec<&str> = t.iter().map(|(s, _, _)| s.as_str()).collect();
        assert_eq!(sigs, ["FACP", "APIC", "MCFG"]);
        let (_, t) = tables(&AcpiConfig {
            num_cpus: 1,
            dmar: Some(DmarConfig {
                host_address_width: 48,
                intr_remap: false,
                register_base: 0xfed9_0000,
            }),
        });
        let sigs: Vec<&str> = t.iter().map(|(s, _, _)| s.as_str()).collect();
        assert_eq!(sigs, ["FACP", "APIC", "MCFG", "DMAR"]);
    }

    #[test]
    fn mcfg_describes_the_ecam_window() {
        let (_, t) = tables(&AcpiConfig {
            num_cpus: 1,
            dmar: None,
        });
        let mcfg = &t.iter().find(|(s, _, _)| s == "MCFG").unwrap().2;
        // Header (36) + reserved (8), then base, segment, start bus, end bus.
        assert_eq!(mcfg.len(), 44 + 16);
        assert_eq!(u64_at(mcfg, 44), PCI_ECAM_START);
        assert_eq!(mcfg[54], 0);
        assert_eq!(mcfg[55], PCI_ECAM_LAST_BUS);
    }

    #[test]
    fn tables_for_many_cpus_still_fit() {
        let (_, t) = tables(&AcpiConfig {
            num_cpus: 255,
            dmar: Some(DmarConfig {
                host_address_width: 39,
                intr_remap: true,
                register_base: 0xfed9_0000,
            }),
        });
        assert_eq!(t.len(), 4);
    }
}
