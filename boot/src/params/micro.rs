//! The boot info a micro-guest finds at `ZERO_PAGE_START` (RDI at entry). Its C mirror is
//! `struct boot_info` in `tests/guests/guest.h`.

use resources::layout::ZERO_PAGE_START;
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryMmap};

use super::BootLocations;
use crate::Error;

/// "IOVM", little-endian.
pub const MICRO_GUEST_MAGIC: u32 = 0x4d56_4f49;

/// The layout shared with the guests.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MicroGuestInfo {
    /// [`MICRO_GUEST_MAGIC`].
    pub magic: u32,
    /// 1.
    pub version: u32,
    /// Guest RAM in bytes.
    pub mem_size: u64,
    /// vCPU count.
    pub num_cpus: u32,
    /// Zero.
    pub pad: u32,
    /// Command line address.
    pub cmdline_addr: u64,
    /// Command line length (no NUL).
    pub cmdline_len: u64,
}

// SAFETY: a repr(C) struct of integers without padding holes; every bit pattern is valid.
unsafe impl ByteValued for MicroGuestInfo {}

/// Writes the boot info.
pub fn write_micro_guest_info(
    mem: &GuestMemoryMmap,
    at: &BootLocations,
    num_cpus: u8,
) -> Result<(), Error> {
    let info = MicroGuestInfo {
        magic: MICRO_GUEST_MAGIC,
        version: 1,
        mem_size: at.mem_size,
        num_cpus: u32::from(num_cpus),
        pad: 0,
        cmdline_addr: at.cmdline.0,
        cmdline_len: at.cmdline.1 as u64,
    };
    mem.write_obj(info, GuestAddress(ZERO_PAGE_START))
        .map_err(|_| Error::GuestMemory {
            what: "the micro-guest boot info",
            addr: ZERO_PAGE_START,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_c_header() {
        assert_eq!(size_of::<MicroGuestInfo>(), 40);
        let m = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let at = BootLocations {
            mem_size: 32 << 20,
            cmdline: (0x2_0000, 7),
            ..Default::default()
        };
        write_micro_guest_info(&m, &at, 3).unwrap();
        let mut raw = [0u8; 40];
        m.read_slice(&mut raw, GuestAddress(ZERO_PAGE_START))
            .unwrap();
        assert_eq!(&raw[0..4], b"IOVM");
        assert_eq!(u64::from_le_bytes(raw[8..16].try_into().unwrap()), 32 << 20);
        assert_eq!(u32::from_le_bytes(raw[16..20].try_into().unwrap()), 3);
        assert_eq!(
            u64::from_le_bytes(raw[24..32].try_into().unwrap()),
            0x2_0000
        );
        assert_eq!(u64::from_le_bytes(raw[32..40].try_into().unwrap()), 7);
    }
}
