//! The ACPI fixed-hardware block the FADT points at (ports `ACPI_PM_BASE..+ACPI_PM_LEN`):
//! PM1a event (status, enable), PM1a control (power-off through SLP_TYP/SLP_EN), the PM timer and
//! the reset register.

use std::sync::Arc;
use std::time::Instant;

use resources::ports::{
    ACPI_PM_BASE, ACPI_PM_TMR, ACPI_PM1A_CNT, ACPI_PM1A_EVT, ACPI_RESET, ACPI_RESET_VALUE,
    ACPI_S5_SLP_TYP,
};
use vm_device::MutDevicePio;
use vm_device::bus::{PioAddress, PioAddressOffset};

use super::{StopHandle, StopRequest};

const STS: u16 = ACPI_PM1A_EVT - ACPI_PM_BASE;
const EN: u16 = STS + 2;
const CNT: u16 = ACPI_PM1A_CNT - ACPI_PM_BASE;
const TMR: u16 = ACPI_PM_TMR - ACPI_PM_BASE;
const RESET: u16 = ACPI_RESET - ACPI_PM_BASE;

/// PM1 control: SCI_EN, the system is in ACPI mode (we have no SMI to switch).
const CNT_SCI_EN: u16 = 1 << 0;
const CNT_SLP_TYP_SHIFT: u16 = 10;
const CNT_SLP_TYP_MASK: u16 = 0x7 << CNT_SLP_TYP_SHIFT;
/// PM1 control: SLP_EN, write-only, enters the state in SLP_TYP.
const CNT_SLP_EN: u16 = 1 << 13;
/// The PM timer's frequency (Hz).
const PM_TIMER_HZ: u128 = 3_579_545;

/// The block's registers.
#[derive(Debug)]
pub struct AcpiPmBlock {
    status: u16,
    enable: u16,
    control: u16,
    started: Instant,
    stop: Arc<dyn StopHandle>,
}

impl AcpiPmBlock {
    /// A block that reports power-off and reset to `stop`.
    pub fn new(stop: Arc<dyn StopHandle>) -> Self {
        Self {
            status: 0,
            enable: 0,
            control: CNT_SCI_EN,
            started: Instant::now(),
            stop,
        }
    }

    fn timer(&self) -> u32 {
        let ticks = self.started.elapsed().as_nanos() * PM_TIMER_HZ / 1_000_000_000;
        // 24-bit counter (FADT TMR_VAL_EXT clear).
        u32::try_from(ticks & 0xff_ffff).unwrap_or(0)
    }

    /// The byte at `offset` in the block.
    fn read_byte(&self, offset: u16) -> u8 {
        let (word, shift) = match offset {
            o if (STS..STS + 2).contains(&o) => (u32::from(self.status), o - STS),
            o if (EN..EN + 2).contains(&o) => (u32::from(self.enable), o - EN),
            o if (CNT..CNT + 2).contains(&o) => (u32::from(self.control), o - CNT),
            o if (TMR..TMR + 4).contains(&o) => (self.timer(), o - TMR),
            _ => return 0,
        };
        (word >> (8 * shift)) as u8
    }

    fn write_control(&mut self, value: u16) {
        // SCI_EN stays set; SLP_EN is not a stored bit.
        self.control = (value & CNT_SLP_TYP_MASK) | CNT_SCI_EN;
        if value & CNT_SLP_EN == 0 {
            return;
        }
        let slp_typ = (value & CNT_SLP_TYP_MASK) >> CNT_SLP_TYP_SHIFT;
        if slp_typ == ACPI_S5_SLP_TYP {
            self.stop.request_stop(StopRequest::PowerOff);
        } else {
            log::warn!("acpi: guest asked for sleep type {slp_typ}, which is not supported");
        }
    }
}

/// Overlays the bytes of an access at `offset` (relative to `reg`) onto a 16-bit register.
fn overlay16(current: u16, reg: u16, offset: u16, data: &[u8]) -> u16 {
    let mut bytes = current.to_le_bytes();
    for (i, b) in data.iter().enumerate() {
        let Some(pos) = usize::from(offset).checked_add(i) else {
            break;
        };
        let Some(slot) = pos
            .checked_sub(usize::from(reg))
            .and_then(|p| bytes.get_mut(p))
        else {
            continue;
        };
        *slot = *b;
    }
    u16::from_le_bytes(bytes)
}

impl MutDevicePio for AcpiPmBlock {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            let off = u16::try_from(i).ok().and_then(|i| offset.checked_add(i));
            *byte = off.map_or(0, |o| self.read_byte(o));
        }
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        let touches = |reg: u16, size: u16| offset < reg + size && offset.saturating_add(len) > reg;
        if touches(STS, 2) {
            // Write one to clear.
            let written = overlay16(0, STS, offset, data);
            self.status &= !written;
        }
        if touches(EN, 2) {
            self.enable = overlay16(self.enable, EN, offset, data);
        }
        if touches(CNT, 2) {
            let value = overlay16(self.control, CNT, offset, data);
            self.write_control(value);
        }
        if offset == RESET && data.first() == Some(&ACPI_RESET_VALUE) {
            self.stop
                .request_stop(StopRequest::Reset("ACPI reset register"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::i8042::tests::Recorder;
    use super::*;

    fn block() -> (AcpiPmBlock, Arc<Recorder>) {
        let rec = Arc::new(Recorder::default());
        (AcpiPmBlock::new(rec.clone()), rec)
    }

    #[test]
    fn s5_with_slp_en_powers_off_in_two_steps_like_linux() {
        let (mut pm, rec) = block();
        let typ = ACPI_S5_SLP_TYP << CNT_SLP_TYP_SHIFT;
        pm.pio_write(PioAddress(ACPI_PM_BASE), CNT, &typ.to_le_bytes());
        assert!(
            rec.0.lock().unwrap().is_empty(),
            "SLP_TYP alone must not power off"
        );
        pm.pio_write(
            PioAddress(ACPI_PM_BASE),
            CNT,
            &(typ | CNT_SLP_EN).to_le_bytes(),
        );
        assert_eq!(*rec.0.lock().unwrap(), vec![StopRequest::PowerOff]);
    }

    #[test]
    fn other_sleep_states_do_not_power_off() {
        let (mut pm, rec) = block();
        let s3 = (1 << CNT_SLP_TYP_SHIFT) | CNT_SLP_EN;
        pm.pio_write(PioAddress(ACPI_PM_BASE), CNT, &s3.to_le_bytes());
        assert!(rec.0.lock().unwrap().is_empty());
    }

    #[test]
    fn sci_en_reads_set_and_slp_en_reads_clear() {
        let (mut pm, _) = block();
        let mut b = [0u8; 2];
        pm.pio_read(PioAddress(ACPI_PM_BASE), CNT, &mut b);
        assert_eq!(u16::from_le_bytes(b) & CNT_SCI_EN, CNT_SCI_EN);
        pm.pio_write(
            PioAddress(ACPI_PM_BASE),
            CNT,
            &(CNT_SLP_EN | (2 << 10)).to_le_bytes(),
        );
        pm.pio_read(PioAddress(ACPI_PM_BASE), CNT, &mut b);
        assert_eq!(u16::from_le_bytes(b) & CNT_SLP_EN, 0);
    }

    #[test]
    fn reset_register_resets_only_with_the_fadt_value() {
        let (mut pm, rec) = block();
        pm.pio_write(PioAddress(ACPI_PM_BASE), RESET, &[0x55]);
        assert!(rec.0.lock().unwrap().is_empty());
        pm.pio_write(PioAddress(ACPI_PM_BASE), RESET, &[ACPI_RESET_VALUE]);
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![StopRequest::Reset("ACPI reset register")]
        );
    }

    #[test]
    fn pm_timer_advances_and_stays_24_bit() {
        let (mut pm, _) = block();
        let read = |pm: &mut AcpiPmBlock| {
            let mut b = [0u8; 4];
            pm.pio_read(PioAddress(ACPI_PM_BASE), TMR, &mut b);
            u32::from_le_bytes(b)
        };
        let a = read(&mut pm);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = read(&mut pm);
        assert!(a <= 0xff_ffff && b <= 0xff_ffff);
        // 5 ms is ~17900 ticks; allow for scheduling noise but require progress.
        assert!(b.wrapping_sub(a) & 0xff_ffff >= 17_000, "{a} -> {b}");
    }

    #[test]
    fn status_is_write_one_to_clear() {
        let (mut pm, _) = block();
        pm.status = 0x0101;
        pm.pio_write(PioAddress(ACPI_PM_BASE), STS, &[0x01, 0x00]);
        assert_eq!(pm.status, 0x0100);
        pm.enable = 0;
        pm.pio_write(PioAddress(ACPI_PM_BASE), EN, &[0x20, 0x01]);
        assert_eq!(pm.enable, 0x0120);
    }

    #[test]
    fn accesses_anywhere_in_the_block_do_not_panic() {
        let (mut pm, _) = block();
        for off in 0..20u16 {
            for len in [0usize, 1, 2, 4, 8] {
                let mut buf = vec![0xffu8; len];
                pm.pio_read(PioAddress(ACPI_PM_BASE), off, &mut buf);
                pm.pio_write(PioAddress(ACPI_PM_BASE), off, &buf);
            }
        }
    }
}
