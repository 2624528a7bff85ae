//! The port I/O map and legacy interrupt lines.

/// i8042 keyboard controller data port (reads only; we emulate just the reset line).
pub const I8042_DATA: u16 = 0x60;
/// i8042 command/status port: writing 0xfe pulses the CPU reset line.
pub const I8042_COMMAND: u16 = 0x64;
/// CMOS/RTC index port (the data port follows).
pub const CMOS_INDEX: u16 = 0x70;
/// POST diagnostic port (writes are ignored; Linux uses it for I/O delays).
pub const POST_CODE: u16 = 0x80;
/// Test-exit device: the byte written here becomes iovmm's exit status.
pub const TEST_EXIT: u16 = 0xf4;
/// First 16550 UART (COM1).
pub const COM1: u16 = 0x3f8;
/// COM1's interrupt line.
pub const COM1_IRQ: u32 = 4;
/// ACPI fixed-hardware block: PM1a event (4 bytes), PM1a control (2), PM timer (4), reset (1).
pub const ACPI_PM_BASE: u16 = 0x600;
/// PM1a event block (status and enable, 2 bytes each).
pub const ACPI_PM1A_EVT: u16 = ACPI_PM_BASE;
/// PM1a control block.
pub const ACPI_PM1A_CNT: u16 = ACPI_PM_BASE + 4;
/// ACPI PM timer (24-bit, 3.579545 MHz).
pub const ACPI_PM_TMR: u16 = ACPI_PM_BASE + 8;
/// ACPI reset register (FADT RESET_REG).
pub const ACPI_RESET: u16 = ACPI_PM_BASE + 0xc;
/// Value the guest writes to [`ACPI_RESET`] to reset the machine.
pub const ACPI_RESET_VALUE: u8 = 0x1;
/// Length of the ACPI fixed-hardware block.
pub const ACPI_PM_LEN: u16 = 0x10;
/// The `SLP_TYP` value our DSDT's `\_S5` package names: PM1a control = (5 << 10) | SLP_EN.
pub const ACPI_S5_SLP_TYP: u16 = 5;
/// ACPI system control interrupt line.
pub const ACPI_SCI_IRQ: u32 = 9;
/// PCI configuration address register (configuration mechanism #1).
pub const PCI_CONFIG_ADDRESS: u16 = 0xcf8;
/// PCI configuration data window (four bytes).
pub const PCI_CONFIG_DATA: u16 = 0xcfc;
/// First GSI handed to PCI INTx lines and other dynamic users (16..24 on the IOAPIC).
pub const FIRST_PCI_GSI: u32 = 16;

/// Number of GSIs shared by PCI INTx lines (16..24).
pub const PCI_INTX_GSIS: u32 = 8;

/// The GSI that INTx `pin` (0 = INTA .. 3 = INTD) of a device in `slot` on the root bus raises.
///
/// The usual swizzle, so that the functions of neighbouring slots spread over the lines. The
/// DSDT's `_PRT` and the PCI devices both use this function, so they cannot disagree.
pub fn pci_intx_gsi(slot: u8, pin: u8) -> u32 {
    FIRST_PCI_GSI + (u32::from(slot) + u32::from(pin & 3)) % PCI_INTX_GSIS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intx_lines_stay_on_the_ioapic_and_swizzle() {
        for slot in 0..32u8 {
            for pin in 0..4u8 {
                let gsi = pci_intx_gsi(slot, pin);
                assert!((FIRST_PCI_GSI..FIRST_PCI_GSI + PCI_INTX_GSIS).contains(&gsi));
            }
        }
        assert_eq!(pci_intx_gsi(1, 0), 17);
        assert_eq!(pci_intx_gsi(1, 1), 18);
        assert_eq!(pci_intx_gsi(7, 1), 16);
    }

    #[test]
    fn acpi_block_registers_fit_in_the_block() {
        for port in [ACPI_PM1A_EVT, ACPI_PM1A_CNT, ACPI_PM_TMR, ACPI_RESET] {
            assert!((ACPI_PM_BASE..ACPI_PM_BASE + ACPI_PM_LEN).contains(&port));
        }
    }
}
