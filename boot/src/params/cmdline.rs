//! The kernel command line in guest memory.

use linux_loader::cmdline::Cmdline;
use linux_loader::loader::load_cmdline;
use resources::layout::{CMDLINE_MAX_SIZE, CMDLINE_START};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::Error;

/// Writes `line` (NUL-terminated) at `CMDLINE_START`; returns `(address, length)`.
pub fn write_cmdline(mem: &GuestMemoryMmap, line: &str) -> Result<(u64, usize), Error> {
    if line.contains('\0') {
        return Err(Error::CmdlineNul);
    }
    let too_long = || Error::CmdlineTooLong {
        len: line.len(),
        max: CMDLINE_MAX_SIZE - 1,
    };
    let mut cmdline = Cmdline::new(CMDLINE_MAX_SIZE).map_err(|_| too_long())?;
    if !line.trim().is_empty() {
        cmdline.insert_str(line.trim()).map_err(|_| too_long())?;
    }
    load_cmdline(mem, GuestAddress(CMDLINE_START), &cmdline).map_err(|_| Error::GuestMemory {
        what: "the command line",
        addr: CMDLINE_START,
    })?;
    let len = cmdline
        .as_cstring()
        .map(|c| c.as_bytes().len())
        .unwrap_or(0);
    Ok((CMDLINE_START, len))
}

#[cfg(test)]
mod tests {
    use vm_memory::Bytes;

    use super::*;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
    }

    #[test]
    fn written_nul_terminated() {
        let m = mem();
        let (addr, len) = write_cmdline(&m, "console=ttyS0 root=/dev/vda").unwrap();
        assert_eq!(len, 27);
        let mut back = vec![0u8; len + 1];
        m.read_slice(&mut back, GuestAddress(addr)).unwrap();
        assert_eq!(&back, b"console=ttyS0 root=/dev/vda\0");
    }

    #[test]
    fn too_long_and_nul_are_refused() {
        let m = mem();
        let long = "x".repeat(CMDLINE_MAX_SIZE);
        assert!(matches!(
            write_cmdline(&m, &long),
            Err(Error::CmdlineTooLong { .. })
        ));
        assert!(matches!(write_cmdline(&m, "a\0b"), Err(Error::CmdlineNul)));
        assert_eq!(write_cmdline(&m, "").unwrap().1, 0);
    }
}
