//! A function's configuration space: the type-0 header, BARs with sizing semantics, and a
//! capability list. Every access takes a guest-controlled offset and size: out-of-range reads
//! return all-ones, out-of-range writes are dropped, nothing panics.

/// Size of the (conventional) configuration space; ECAM offsets beyond it read all-ones.
pub const CONFIG_SIZE: usize = 256;
const COMMAND: usize = 0x04;
const STATUS: usize = 0x06;
const BAR0: usize = 0x10;
const CAPABILITIES_POINTER: usize = 0x34;
const INTERRUPT_LINE: usize = 0x3c;
const INTERRUPT_PIN: usize = 0x3d;
const FIRST_CAPABILITY: usize = 0x40;
/// Command: memory space decode.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command: bus master (the function may do DMA).
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Command: INTx disable.
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
const STATUS_CAPABILITIES: u16 = 1 << 4;
/// Status bits that are write-1-to-clear: master/target abort, parity and system errors
/// (bits 8, 11..15).
const STATUS_RW1C: u16 = 0xf900;

/// One memory BAR as the function declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarSpec {
    /// Size in bytes: a power of two, at least 4 KiB.
    pub size: u64,
    /// A 64-bit BAR (uses the next BAR slot for the upper half).
    pub is_64: bool,
    /// Prefetchable.
    pub prefetchable: bool,
}

/// Identity of a function.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity {
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Class code (base << 16 | sub << 8 | prog-if).
    pub class: u32,
    /// Revision.
    pub revision: u8,
    /// Subsystem vendor id.
    pub subsystem_vendor: u16,
    /// Subsystem id.
    pub subsystem: u16,
}

/// A type-0 configuration space.
#[derive(Clone, Debug)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    writable: [u8; CONFIG_SIZE],
    /// Bits a guest clears by writing 1 (error bits the device sets).
    write_one_to_clear: [u8; CONFIG_SIZE],
    bars: [Option<BarSpec>; 6],
    /// Slots holding the upper half of a 64-bit BAR.
    upper_half: [bool; 6],
    last_capability: Option<usize>,
    next_capability: usize,
}

impl ConfigSpace {
    /// A header for `id` with no BARs and no capabilities.
    pub fn new(id: Identity) -> Self {
        let mut c = Self {
            bytes: [0; CONFIG_SIZE],
            writable: [0; CONFIG_SIZE],
            write_one_to_clear: [0; CONFIG_SIZE],
            bars: [None; 6],
            upper_half: [false; 6],
            last_capability: None,
            next_capability: FIRST_CAPABILITY,
        };
        c.set16(0x00, id.vendor);
        c.set16(0x02, id.device);
        c.set8(0x08, id.revision);
        c.set8(0x09, id.class as u8);
        c.set8(0x0a, (id.class >> 8) as u8);
        c.set8(0x0b, (id.class >> 16) as u8);
        c.set16(0x2c, id.subsystem_vendor);
        c.set16(0x2e, id.subsystem);
        let command = COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE | 1;
        c.set_writable(COMMAND, &command.to_le_bytes());
        c.set_writable(INTERRUPT_LINE, &[0xff]);
        c.set_write_one_to_clear(STATUS, &STATUS_RW1C.to_le_bytes());
        c
    }

    fn set8(&mut self, at: usize, v: u8) {
        if let Some(b) = self.bytes.get_mut(at) {
            *b = v;
        }
    }

    fn set16(&mut self, at: usize, v: u16) {
        self.set_bytes(at, &v.to_le_bytes());
    }

    fn set_bytes(&mut self, at: usize, v: &[u8]) {
        if let Some(dst) = self.bytes.get_mut(at..at.saturating_add(v.len())) {
            dst.copy_from_slice(v);
        }
    }

    /// Marks the bits of `mask` at `at` write-1-to-clear.
    pub fn set_write_one_to_clear(&mut self, at: usize, mask: &[u8]) {
        if let Some(dst) = self
            .write_one_to_clear
            .get_mut(at..at.saturating_add(mask.len()))
        {
            for (d, m) in dst.iter_mut().zip(mask) {
                *d |= m;
            }
        }
    }

    fn set_writable(&mut self, at: usize, mask: &[u8]) {
        if let Some(dst) = self.writable.get_mut(at..at.saturating_add(mask.len())) {
            dst.copy_from_slice(mask);
        }
    }

    /// Declares INTx pin A (1) routed to `line`.
    pub fn set_interrupt(&mut self, pin: u8, line: u8) {
        self.set8(INTERRUPT_PIN, pin);
        self.set8(INTERRUPT_LINE, line);
    }

    /// Declares BAR `index`. A 64-bit BAR also takes `index + 1`. Returns false if the slot is
    /// taken or the size is not a power of two of at least 16 bytes.
    pub fn add_bar(&mut self, index: usize, spec: BarSpec) -> bool {
        let slots = if spec.is_64 { 2 } else { 1 };
        if index + slots > 6
            || !spec.size.is_power_of_two()
            || spec.size < 16
            || (!spec.is_64 && spec.size > 1 << 31)
            || self
                .bars
                .get(index..index + slots)
                .is_none_or(|s| s.iter().any(Option::is_some))
            || self
                .upper_half
                .get(index..index + slots)
                .is_none_or(|s| s.iter().any(|u| *u))
        {
            return false;
        }
        let kind = (u32::from(spec.is_64) << 2) | (u32::from(spec.prefetchable) << 3);
        let at = BAR0 + 4 * index;
        self.set_bytes(at, &kind.to_le_bytes());
        let mask = !(spec.size - 1);
        self.set_writable(at, &((mask as u32) & !0xf).to_le_bytes());
        if spec.is_64 {
            self.set_writable(at + 4, &((mask >> 32) as u32).to_le_bytes());
        }
        if let Some(slot) = self.bars.get_mut(index) {
            *slot = Some(spec);
        }
        if spec.is_64
            && let Some(upper) = self.upper_half.get_mut(index + 1)
        {
            *upper = true;
        }
        true
    }

    /// The BAR's declared shape.
    pub fn bar_spec(&self, index: usize) -> Option<BarSpec> {
        self.bars.get(index).copied().flatten()
    }

    /// The address BAR `index` currently holds (whatever the guest programmed).
    pub fn bar_address(&self, index: usize) -> Option<u64> {
        let spec = self.bar_spec(index)?;
        let at = BAR0 + 4 * index;
        let lo = u64::from(self.read_u32(at)) & !0xf;
        let hi = if spec.is_64 {
            u64::from(self.read_u32(at + 4))
        } else {
            0
        };
        Some((hi << 32) | lo)
    }

    /// Programs BAR `index` with `addr` (as firmware would).
    pub fn set_bar_address(&mut self, index: usize, addr: u64) {
        let Some(spec) = self.bar_spec(index) else {
            return;
        };
        let at = BAR0 + 4 * index;
        let kind = self.read_u32(at) & 0xf;
        self.set_bytes(at, &((addr as u32 & !0xf) | kind).to_le_bytes());
        if spec.is_64 {
            self.set_bytes(at + 4, &((addr >> 32) as u32).to_le_bytes());
        }
    }

    /// Appends a capability: `body` starts with the capability id; the next pointer (byte 1)
    /// is filled in. `writable` masks the guest-writable bits of `body`. Returns its offset.
    pub fn add_capability(&mut self, body: &[u8], writable: &[u8]) -> Option<usize> {
        let at = self.next_capability;
        let end = at.checked_add(body.len())?;
        if body.len() < 2 || end > CONFIG_SIZE {
            return None;
        }
        self.set_bytes(at, body);
        self.set8(at + 1, 0);
        self.set_writable(at, writable);
        match self.last_capability {
            Some(prev) => self.set8(prev + 1, at as u8),
            None => self.set8(CAPABILITIES_POINTER, at as u8),
        }
        let status = self.read_u16(STATUS) | STATUS_CAPABILITIES;
        self.set16(STATUS, status);
        self.last_capability = Some(at);
        self.next_capability = (end + 3) & !3;
        Some(at)
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.read_u16(COMMAND)
    }

    /// Whether the function decodes memory accesses to its BARs.
    pub fn memory_enabled(&self) -> bool {
        self.command() & COMMAND_MEMORY != 0
    }

    /// Reads `data.len()` bytes at `offset`; bytes beyond the space read 0xff.
    pub fn read(&self, offset: usize, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = offset
                .checked_add(i)
                .and_then(|o| self.bytes.get(o))
                .copied()
                .unwrap_or(0xff);
        }
    }

    /// Writes guest data at `offset` through the write masks.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        for (i, v) in data.iter().enumerate() {
            let Some(o) = offset.checked_add(i) else {
                return;
            };
            let (Some(b), Some(m), Some(c)) = (
                self.bytes.get_mut(o),
                self.writable.get(o),
                self.write_one_to_clear.get(o),
            ) else {
                return;
            };
            *b = ((*b & !m) | (v & m)) & !(v & c);
        }
    }

    /// Little-endian u16 at `at` (0xffff outside).
    pub fn read_u16(&self, at: usize) -> u16 {
        let mut b = [0u8; 2];
        self.read(at, &mut b);
        u16::from_le_bytes(b)
    }

    /// Little-endian u32 at `at` (all-ones outside).
    pub fn read_u32(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read(at, &mut b);
        u32::from_le_bytes(b)
    }

    /// Sets bytes the guest cannot write (device-owned state inside a capability).
    pub fn set_device_bytes(&mut self, at: usize, v: &[u8]) {
        self.set_bytes(at, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> ConfigSpace {
        ConfigSpace::new(Identity {
            vendor: 0x1af4,
            device: 0x1042,
            class: 0x01_80_00,
            revision: 1,
            subsystem_vendor: 0x1af4,
            subsystem: 2,
        })
    }

    #[test]
    fn header_fields_are_where_the_spec_puts_them() {
        let c = space();
        assert_eq!(c.read_u32(0), 0x1042_1af4);
        assert_eq!(c.read_u32(8), 0x0180_0001);
        assert_eq!(c.read_u32(0x2c), 0x0002_1af4);
        let mut b = [0u8; 4];
        c.read(254, &mut b);
        assert_eq!(b, [0, 0, 0xff, 0xff], "beyond the space reads all-ones");
    }

    #[test]
    fn bar_sizing_32_and_64_bit() {
        let mut c = space();
        assert!(c.add_bar(
            0,
            BarSpec {
                size: 0x4000,
                is_64: true,
                prefetchable: false
            }
        ));
        assert!(c.add_bar(
            2,
            BarSpec {
                size: 0x1000,
                is_64: false,
                prefetchable: false
            }
        ));
        assert!(
            !c.add_bar(
                1,
                BarSpec {
                    size: 0x1000,
                    is_64: false,
                    prefetchable: false
                }
            ),
            "slot 1 is BAR0's upper half"
        );
        assert!(!c.add_bar(
            3,
            BarSpec {
                size: 0x1800,
                is_64: false,
                prefetchable: false
            }
        ));
        c.write(0x10, &u32::MAX.to_le_bytes());
        c.write(0x14, &u32::MAX.to_le_bytes());
        assert_eq!(
            c.read_u32(0x10),
            0xffff_c004,
            "size mask with the 64-bit type bits"
        );
        assert_eq!(c.read_u32(0x14), 0xffff_ffff);
        c.write(0x18, &u32::MAX.to_le_bytes());
        assert_eq!(c.read_u32(0x18), 0xffff_f000);
        c.write(0x10, &0xc000_0000u32.to_le_bytes());
        c.write(0x14, &1u32.to_le_bytes());
        assert_eq!(c.bar_address(0), Some(0x1_c000_0000));
        c.set_bar_address(2, 0xc001_0000);
        assert_eq!(c.bar_address(2), Some(0xc001_0000));
        assert_eq!(c.bar_address(4), None);
    }

    #[test]
    fn read_only_fields_ignore_writes_and_command_bits_stick() {
        let mut c = space();
        c.write(0, &[0; 4]);
        assert_eq!(c.read_u32(0), 0x1042_1af4);
        c.write(4, &0xffffu16.to_le_bytes());
        assert_eq!(c.command(), 0x0407);
        assert!(c.memory_enabled());
    }

    #[test]
    fn status_error_bits_are_write_one_to_clear() {
        let mut c = space();
        // The device reports a received master abort (bit 13) and a signalled system error
        // (bit 14).
        let status = c.read_u16(0x06);
        c.set_device_bytes(0x06, &(status | 0x6000).to_le_bytes());
        // Writing 0 keeps them; writing 1 to bit 13 clears only that one; the read-only
        // capabilities bit survives a write of all-ones.
        c.write(0x06, &0u16.to_le_bytes());
        assert_eq!(c.read_u16(0x06) & 0x6000, 0x6000);
        c.write(0x06, &0x2000u16.to_le_bytes());
        assert_eq!(c.read_u16(0x06) & 0x6000, 0x4000);
        c.write(0x04, &0xffff_ffffu32.to_le_bytes());
        assert_eq!(c.read_u16(0x06) & 0x6000, 0);
        assert_eq!(c.read_u16(0x06) & 0x10, status & 0x10);
    }

    #[test]
    fn capability_list_walks() {
        let mut c = space();
        let a = c
            .add_capability(&[0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[0, 0, 0, 0xc0])
            .unwrap();
        let b = c
            .add_capability(&[0x09, 0, 16, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[])
            .unwrap();
        assert_ne!(c.read_u16(6) & STATUS_CAPABILITIES, 0);
        let mut ids = Vec::new();
        let mut at = usize::from(c.read_u16(0x34) as u8);
        while at != 0 {
            ids.push((at, c.read_u16(at) as u8));
            at = usize::from((c.read_u16(at) >> 8) as u8);
        }
        assert_eq!(ids, vec![(a, 0x11), (b, 0x09)]);
        c.write(a + 3, &[0xff]);
        assert_eq!(c.read_u16(a + 2), 0xc000, "only the writable bits changed");
    }

    #[test]
    fn hostile_offsets_and_sizes_never_panic() {
        let mut c = space();
        let mut x = 0x1234_5678u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = (x % 300) as usize;
            let len = (x >> 20) as usize % 9;
            let mut buf = vec![0u8; len];
            c.read(off, &mut buf);
            c.write(off, &buf);
            c.write(usize::MAX - 2, &[1, 2, 3, 4]);
        }
    }
}
