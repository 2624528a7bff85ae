//! The FADT: full (not hardware-reduced) fixed hardware at `ports::ACPI_PM_BASE`, so Linux
//! finds its PM timer, powers off through PM1a control and resets through the reset register.

use acpi_tables::Aml;
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use resources::ports::{
    ACPI_PM_TMR, ACPI_PM1A_CNT, ACPI_PM1A_EVT, ACPI_RESET, ACPI_RESET_VALUE, ACPI_SCI_IRQ,
};

use super::{OEM_ID, OEM_REVISION, OEM_TABLE_ID};

/// IAPC_BOOT_ARCH: no VGA.
const BOOT_ARCH_VGA_NOT_PRESENT: u16 = 1 << 2;
/// IAPC_BOOT_ARCH: the OS must not touch PCIe ASPM (there is none).
const BOOT_ARCH_PCIE_ASPM_CONTROLS: u16 = 1 << 4;

fn io_register(port: u16, bits: u8) -> GAS {
    let size = match bits {
        8 => AccessSize::ByteAccess,
        16 => AccessSize::WordAccess,
        _ => AccessSize::DwordAccess,
    };
    GAS::new(AddressSpace::SystemIo, bits, 0, size, u64::from(port))
}

/// The FADT pointing at `dsdt` and `facs`.
pub(super) fn build(dsdt: u64, facs: u64) -> Vec<u8> {
    let mut f = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(dsdt)
        .firmware_ctrl_64(facs)
        .flag(Flags::Wbinvd)
        .flag(Flags::ProcC1)
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton)
        .flag(Flags::ResetRegSup);
    // ACPI 6 §5.2.9: FIRMWARE_CTRL must be zero when X_FIRMWARE_CTRL is set (Linux installs
    // the FACS twice otherwise). DSDT may carry both; old parsers read the 32-bit one.
    f.dsdt = (dsdt as u32).into();
    f.firmware_ctrl = 0u32.into();
    f.sci_int = (ACPI_SCI_IRQ as u16).into();
    // SMI_CMD = 0: the platform is always in ACPI mode (SCI_EN reads set).
    f.pm1a_evt_blk = u32::from(ACPI_PM1A_EVT).into();
    f.pm1a_cnt_blk = u32::from(ACPI_PM1A_CNT).into();
    f.pm_tmr_blk = u32::from(ACPI_PM_TMR).into();
    f.pm1_evt_len = 4;
    f.pm1_cnt_len = 2;
    f.pm_tmr_len = 4;
    f.x_pm1a_evt_blk = io_register(ACPI_PM1A_EVT, 32);
    f.x_pm1a_cnt_blk = io_register(ACPI_PM1A_CNT, 16);
    f.x_pm_tmr_blk = io_register(ACPI_PM_TMR, 32);
    f.reset_reg = io_register(ACPI_RESET, 8);
    f.reset_value = ACPI_RESET_VALUE;
    f.iapc_boot_arch = (BOOT_ARCH_VGA_NOT_PRESENT | BOOT_ARCH_PCIE_ASPM_CONTROLS).into();
    let mut bytes = Vec::new();
    f.finalize().to_aml_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::super::AcpiConfig;
    use super::super::tests::{checksum_ok, tables, u32_at, u64_at};
    use super::*;

    #[test]
    fn fields_at_their_spec_offsets() {
        let (m, t) = tables(&AcpiConfig {
            num_cpus: 1,
            dmar: None,
        });
        let f = &t.iter().find(|(s, _, _)| s == "FACP").unwrap().2;
        assert!(checksum_ok(f));
        assert_eq!(f.len(), 276, "ACPI 6 FADT length");
        assert_eq!(
            u32_at(f, 36),
            0,
            "FIRMWARE_CTRL must be 0 when X_FIRMWARE_CTRL is set"
        );
        let facs = u64_at(f, 132);
        let dsdt = u32_at(f, 40) as u64;
        assert_eq!(u64_at(f, 140), dsdt, "X_DSDT");
        assert_eq!(facs % 64, 0, "FACS must be 64-byte aligned");
        assert_eq!(
            u16::from_le_bytes([f[46], f[47]]),
            ACPI_SCI_IRQ as u16,
            "SCI_INT"
        );
        assert_eq!(u32_at(f, 48), 0, "SMI_CMD");
        assert_eq!(u32_at(f, 56), u32::from(ACPI_PM1A_EVT), "PM1a_EVT_BLK");
        assert_eq!(u32_at(f, 64), u32::from(ACPI_PM1A_CNT), "PM1a_CNT_BLK");
        assert_eq!(u32_at(f, 76), u32::from(ACPI_PM_TMR), "PM_TMR_BLK");
        assert_eq!(
            (f[88], f[89], f[91]),
            (4, 2, 4),
            "PM1_EVT_LEN, PM1_CNT_LEN, PM_TMR_LEN"
        );
        let flags = u32_at(f, 112);
        assert_ne!(flags & (1 << 10), 0, "RESET_REG_SUP");
        assert_eq!(flags & (1 << 20), 0, "not HW_REDUCED_ACPI");
        assert_eq!((f[116], f[117]), (1, 8), "RESET_REG is SystemIO, 8 bits");
        assert_eq!(u64_at(f, 120), u64::from(ACPI_RESET));
        assert_eq!(f[128], ACPI_RESET_VALUE);
        // X_PM1a_CNT_BLK is a GAS at 172: space, width, offset, access size, then the address.
        assert_eq!(
            (f[172], f[173]),
            (1, 16),
            "X_PM1a_CNT_BLK is SystemIO, 16 bits"
        );
        assert_eq!(
            u64_at(f, 176),
            u64::from(ACPI_PM1A_CNT),
            "X_PM1a_CNT_BLK address"
        );
        let dsdt_bytes = super::super::tests::read_table(&m, dsdt);
        assert_eq!(&dsdt_bytes[0..4], b"DSDT");
        let mut facs_sig = [0u8; 4];
        vm_memory::Bytes::read_slice(&m, &mut facs_sig, vm_memory::GuestAddress(facs)).unwrap();
        assert_eq!(&facs_sig, b"FACS");
    }
}
