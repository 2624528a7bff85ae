//! The CMOS real-time clock (MC146818) at ports 0x70/0x71: the host's UTC time in BCD, 24-hour
//! mode, never "update in progress", plus 128 bytes of CMOS RAM. Linux reads the wall clock from
//! it at boot; without it, it warns and starts in 1970.

use std::time::{SystemTime, UNIX_EPOCH};

use vm_device::MutDevicePio;
use vm_device::bus::{PioAddress, PioAddressOffset};

const REG_SECONDS: u8 = 0x00;
const REG_MINUTES: u8 = 0x02;
const REG_HOURS: u8 = 0x04;
const REG_WEEKDAY: u8 = 0x06;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_STATUS_A: u8 = 0x0a;
const REG_STATUS_B: u8 = 0x0b;
const REG_STATUS_C: u8 = 0x0c;
const REG_STATUS_D: u8 = 0x0d;
const REG_CENTURY: u8 = 0x32;

/// Status A: 32.768 kHz time base, 1024 Hz rate; UIP (bit 7) always clear.
const STATUS_A: u8 = 0x26;
/// Status B: 24-hour mode (bit 1), BCD (bit 2 clear).
const STATUS_B: u8 = 0x02;
/// Status D: the battery is good and the RAM valid (bit 7).
const STATUS_D: u8 = 0x80;

/// The clock and its RAM.
#[derive(Debug)]
pub struct Cmos {
    index: u8,
    ram: [u8; 128],
}

impl Default for Cmos {
    fn default() -> Self {
        Self {
            index: 0,
            ram: [0; 128],
        }
    }
}

fn bcd(v: u64) -> u8 {
    let v = v % 100;
    u8::try_from(((v / 10) << 4) | (v % 10)).unwrap_or(0)
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Hinnant's civil-from-days).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u64::try_from(month).unwrap_or(1),
        u64::try_from(day).unwrap_or(1),
    )
}

impl Cmos {
    /// A clock showing the host's time.
    pub fn new() -> Self {
        Self::default()
    }

    fn read_register(&self, reg: u8, unix_seconds: u64) -> u8 {
        let days = i64::try_from(unix_seconds / 86_400).unwrap_or(0);
        let secs_of_day = unix_seconds % 86_400;
        let (year, month, day) = civil_from_days(days);
        let year = u64::try_from(year).unwrap_or(1970);
        match reg {
            REG_SECONDS => bcd(secs_of_day % 60),
            REG_MINUTES => bcd(secs_of_day / 60 % 60),
            REG_HOURS => bcd(secs_of_day / 3600),
            // 1970-01-01 was a Thursday; the RTC counts Sunday as 1.
            REG_WEEKDAY => bcd(u64::try_from((days + 4).rem_euclid(7)).unwrap_or(0) + 1),
            REG_DAY => bcd(day),
            REG_MONTH => bcd(month),
            REG_YEAR => bcd(year % 100),
            REG_CENTURY => bcd(year / 100),
            REG_STATUS_A => STATUS_A,
            REG_STATUS_B => STATUS_B,
            REG_STATUS_C => 0,
            REG_STATUS_D => STATUS_D,
            other => self.ram.get(usize::from(other)).copied().unwrap_or(0xff),
        }
    }
}

fn now_unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl MutDevicePio for Cmos {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        let value = match offset {
            0 => self.index,
            1 => self.read_register(self.index, now_unix_seconds()),
            _ => 0xff,
        };
        data.fill(value);
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        match offset {
            // Bit 7 of the index port masks NMIs on real hardware; it is not part of the index.
            0 => self.index = value & 0x7f,
            1 => {
                let is_clock = matches!(self.index, REG_SECONDS..=REG_STATUS_D | REG_CENTURY);
                if is_clock {
                    log::debug!(
                        "cmos: ignoring write {value:#x} to clock register {:#x}",
                        self.index
                    );
                } else if let Some(slot) = self.ram.get_mut(usize::from(self.index)) {
                    *slot = value;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2000-02-29 is day 11016; 2026-11-22 is day 20779.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
    }

    #[test]
    fn clock_registers_are_bcd_of_the_given_time() {
        let cmos = Cmos::new();
        // 2026-11-22 13:45:07 UTC, a Sunday.
        let t = 20_779 * 86_400 + 13 * 3600 + 45 * 60 + 7;
        assert_eq!(cmos.read_register(REG_SECONDS, t), 0x07);
        assert_eq!(cmos.read_register(REG_MINUTES, t), 0x45);
        assert_eq!(cmos.read_register(REG_HOURS, t), 0x13);
        assert_eq!(cmos.read_register(REG_DAY, t), 0x22);
        assert_eq!(cmos.read_register(REG_MONTH, t), 0x11);
        assert_eq!(cmos.read_register(REG_YEAR, t), 0x26);
        assert_eq!(cmos.read_register(REG_CENTURY, t), 0x20);
        assert_eq!(cmos.read_register(REG_WEEKDAY, t), 1);
        assert_eq!(
            cmos.read_register(REG_STATUS_A, t) & 0x80,
            0,
            "UIP must be clear"
        );
        assert_eq!(cmos.read_register(REG_STATUS_D, t), 0x80);
    }

    #[test]
    fn ram_is_stored_and_clock_writes_are_ignored() {
        let mut cmos = Cmos::new();
        cmos.pio_write(PioAddress(0x70), 0, &[0x80 | 0x40]);
        cmos.pio_write(PioAddress(0x70), 1, &[0x5a]);
        let mut b = [0u8];
        cmos.pio_read(PioAddress(0x70), 1, &mut b);
        assert_eq!(b[0], 0x5a);
        cmos.pio_write(PioAddress(0x70), 0, &[REG_STATUS_B]);
        cmos.pio_write(PioAddress(0x70), 1, &[0xff]);
        cmos.pio_read(PioAddress(0x70), 1, &mut b);
        assert_eq!(b[0], STATUS_B);
    }
}
