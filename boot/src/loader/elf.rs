//! ELF images: the program headers and notes we need (PVH entry, the IOVMM micro-guest note),
//! checked against guest RAM, then loaded with linux-loader.

use std::io::Cursor;
use std::path::Path;

use linux_loader::loader::{Elf, KernelLoader};
use resources::layout::HIGH_RAM_START;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::{EntryPoint, EntryPreference, LoadedKernel};
use crate::Error;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
/// `XEN_ELFNOTE_PHYS32_ENTRY`: the PVH entry point.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// The note that marks a micro-guest (name "IOVMM", type 1).
const IOVMM_NOTE_TYPE: u32 = 1;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A 64-bit little-endian x86-64 ELF.
pub(crate) fn is_elf(image: &[u8]) -> bool {
    image.get(..6) == Some(&[0x7f, b'E', b'L', b'F', 2, 1][..])
}

/// One program header, the fields we use.
#[derive(Debug, Clone, Copy)]
struct ProgramHeader {
    kind: u32,
    offset: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
}

/// One ELF note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub name: Vec<u8>,
    pub kind: u32,
    pub desc: Vec<u8>,
}

/// What we read from an ELF image.
#[derive(Debug)]
pub(crate) struct ElfInfo {
    pub entry: u64,
    headers: Vec<ProgramHeader>,
    pub notes: Vec<Note>,
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|n| n & !3)
}

fn parse_notes(segment: &[u8], notes: &mut Vec<Note>) {
    let mut pos = 0usize;
    while let (Some(namesz), Some(descsz), Some(kind)) = (
        u32_at(segment, pos),
        u32_at(segment, pos + 4),
        u32_at(segment, pos + 8),
    ) {
        let name_start = pos + 12;
        let Some(desc_start) = align4(name_start + namesz as usize) else {
            return;
        };
        let Some(next) = align4(desc_start + descsz as usize) else {
            return;
        };
        let (Some(name), Some(desc)) = (
            segment.get(name_start..name_start + namesz as usize),
            segment.get(desc_start..desc_start + descsz as usize),
        ) else {
            return;
        };
        // Names include their NUL terminator.
        let name = name.strip_suffix(&[0]).unwrap_or(name).to_vec();
        notes.push(Note {
            name,
            kind,
            desc: desc.to_vec(),
        });
        pos = next;
    }
}

/// Reads the ELF header, program headers and notes of `image`.
pub(crate) fn parse(image: &[u8]) -> Result<ElfInfo, String> {
    if !is_elf(image) {
        return Err("not a 64-bit little-endian ELF".into());
    }
    let machine = u16_at(image, 18).ok_or("truncated ELF header")?;
    if machine != 62 {
        return Err(format!("ELF machine {machine} is not x86-64"));
    }
    let entry = u64_at(image, 24).ok_or("truncated ELF header")?;
    let phoff = usize::try_from(u64_at(image, 32).ok_or("truncated ELF header")?)
        .map_err(|_| "program header offset out of range")?;
    let phentsize = usize::from(u16_at(image, 54).ok_or("truncated ELF header")?);
    let phnum = usize::from(u16_at(image, 56).ok_or("truncated ELF header")?);
    if phentsize < 56 {
        return Err(format!("program header size {phentsize} is too small"));
    }
    let mut headers = Vec::new();
    let mut notes = Vec::new();
    for i in 0..phnum {
        let at = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or("program header table out of range")?;
        let field = |o: usize| {
            u64_at(image, at + o).ok_or("program header table runs past the end of the file")
        };
        let ph = ProgramHeader {
            kind: u32_at(image, at).ok_or("program header table runs past the end of the file")?,
            offset: field(8)?,
            paddr: field(24)?,
            filesz: field(32)?,
            memsz: field(40)?,
        };
        let in_file = usize::try_from(ph.offset)
            .ok()
            .zip(usize::try_from(ph.filesz).ok())
            .and_then(|(o, n)| image.get(o..o.checked_add(n)?));
        if ph.kind == PT_NOTE
            && let Some(segment) = in_file
        {
            parse_notes(segment, &mut notes);
        }
        if ph.kind == PT_LOAD && in_file.is_none() {
            return Err(format!("segment {i} runs past the end of the file"));
        }
        headers.push(ph);
    }
    Ok(ElfInfo {
        entry,
        headers,
        notes,
    })
}

impl ElfInfo {
    /// The PVH entry, if the Xen note is present.
    pub(crate) fn pvh_entry(&self) -> Option<u64> {
        self.notes
            .iter()
            .find(|n| n.name == b"Xen" && n.kind == XEN_ELFNOTE_PHYS32_ENTRY)
            .and_then(|n| match n.desc.len() {
                4 => u32_at(&n.desc, 0).map(u64::from),
                8 => u64_at(&n.desc, 0),
                _ => None,
            })
    }

    /// True if this is a micro-guest.
    pub(crate) fn is_micro_guest(&self) -> bool {
        self.notes
            .iter()
            .any(|n| n.name == b"IOVMM" && n.kind == IOVMM_NOTE_TYPE)
    }

    /// Loadable segments `(paddr, memsz)`.
    fn loads(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.headers
            .iter()
            .filter(|h| h.kind == PT_LOAD && h.memsz > 0)
            .map(|h| (h.paddr, h.memsz))
    }
}

/// Loads an ELF `image` (read from `path`, described as `what` in messages).
pub(crate) fn load(
    mem: &GuestMemoryMmap,
    path: &Path,
    image: &[u8],
    preference: EntryPreference,
    what: &str,
) -> Result<LoadedKernel, Error> {
    let bad = |reason: String| Error::BadElf {
        path: path.to_path_buf(),
        reason,
    };
    let info = parse(image).map_err(bad)?;
    let mut end = 0u64;
    for (paddr, memsz) in info.loads() {
        let seg_end = paddr
            .checked_add(memsz)
            .ok_or_else(|| bad(format!("segment at {paddr:#x} wraps around")))?;
        let len = usize::try_from(memsz).map_err(|_| bad("segment too large".into()))?;
        if paddr < HIGH_RAM_START || !mem.check_range(GuestAddress(paddr), len) {
            return Err(bad(format!(
                "segment {paddr:#x}..{seg_end:#x} is not in guest RAM above 1 MiB; give the guest more --memory"
            )));
        }
        end = end.max(seg_end);
    }
    if end == 0 {
        return Err(bad("no loadable segment".into()));
    }
    Elf::load(mem, None, &mut Cursor::new(image), None).map_err(|e| bad(e.to_string()))?;

    let (entry, how) = if info.is_micro_guest() {
        (
            EntryPoint::MicroGuest(info.entry),
            "micro-guest, CPL3 entry",
        )
    } else {
        match (preference, info.pvh_entry()) {
            (EntryPreference::Auto | EntryPreference::Pvh, Some(pvh)) => {
                (EntryPoint::Pvh(pvh), "PVH entry")
            }
            (EntryPreference::Pvh, None) => {
                return Err(Error::Entry {
                    path: path.to_path_buf(),
                    reason: "the kernel has no PVH note (CONFIG_PVH); use --boot-entry linux64"
                        .into(),
                });
            }
            _ => (EntryPoint::Linux64(info.entry), "64-bit Linux entry"),
        }
    };
    Ok(LoadedKernel {
        entry,
        kernel_end: end,
        setup_header: None,
        description: format!(
            "{what}, {how}, {:.1} MiB loaded",
            (end - HIGH_RAM_START.min(end)) as f64 / (1 << 20) as f64
        ),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 with one PT_LOAD of `code` at `paddr` and the given notes.
    pub(crate) fn build_elf(
        paddr: u64,
        entry: u64,
        code: &[u8],
        notes: &[(&str, u32, &[u8])],
    ) -> Vec<u8> {
        let mut note_bytes = Vec::new();
        for (name, kind, desc) in notes {
            let mut n = name.as_bytes().to_vec();
            n.push(0);
            note_bytes.extend_from_slice(&(n.len() as u32).to_le_bytes());
            note_bytes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            note_bytes.extend_from_slice(&kind.to_le_bytes());
            note_bytes.extend_from_slice(&n);
            while note_bytes.len() % 4 != 0 {
                note_bytes.push(0);
            }
            note_bytes.extend_from_slice(desc);
            while note_bytes.len() % 4 != 0 {
                note_bytes.push(0);
            }
        }
        let phnum: u16 = if notes.is_empty() { 1 } else { 2 };
        let code_off = 64 + 56 * u64::from(phnum);
        let note_off = code_off + code.len() as u64;
        let mut e = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        e.resize(16, 0);
        e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        e.extend_from_slice(&62u16.to_le_bytes()); // x86-64
        e.extend_from_slice(&1u32.to_le_bytes());
        e.extend_from_slice(&entry.to_le_bytes());
        e.extend_from_slice(&64u64.to_le_bytes()); // phoff
        e.extend_from_slice(&0u64.to_le_bytes()); // shoff
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&64u16.to_le_bytes());
        e.extend_from_slice(&56u16.to_le_bytes());
        e.extend_from_slice(&phnum.to_le_bytes());
        e.extend_from_slice(&[0u8; 6]);
        let ph = |e: &mut Vec<u8>, kind: u32, off: u64, paddr: u64, size: u64, memsz: u64| {
            e.extend_from_slice(&kind.to_le_bytes());
            e.extend_from_slice(&5u32.to_le_bytes());
            e.extend_from_slice(&off.to_le_bytes());
            e.extend_from_slice(&paddr.to_le_bytes());
            e.extend_from_slice(&paddr.to_le_bytes());
            e.extend_from_slice(&size.to_le_bytes());
            e.extend_from_slice(&memsz.to_le_bytes());
            e.extend_from_slice(&0x1000u64.to_le_bytes());
        };
        let len = code.len() as u64;
        ph(&mut e, PT_LOAD, code_off, paddr, len, len + 0x1000);
        if !notes.is_empty() {
            ph(
                &mut e,
                PT_NOTE,
                note_off,
                0,
                note_bytes.len() as u64,
                note_bytes.len() as u64,
            );
        }
        e.extend_from_slice(code);
        e.extend_from_slice(&note_bytes);
        e
    }

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap()
    }

    #[test]
    fn notes_are_found() {
        let elf = build_elf(
            0x100_0000,
            0x100_0000,
            &[0x90; 16],
            &[
                ("Xen", 18, &0x100_0040u64.to_le_bytes()),
                ("IOVMM", 1, &1u32.to_le_bytes()),
            ],
        );
        let info = parse(&elf).unwrap();
        assert_eq!(info.pvh_entry(), Some(0x100_0040));
        assert!(info.is_micro_guest());
    }

    #[test]
    fn entry_choice_follows_notes_and_preference() {
        let path = Path::new("k");
        let pvh = build_elf(
            0x100_0000,
            0x100_0000,
            &[1, 2, 3, 4],
            &[("Xen", 18, &0x100_0010u32.to_le_bytes())],
        );
        let m = mem();
        let k = load(&m, path, &pvh, EntryPreference::Auto, "ELF").unwrap();
        assert_eq!(k.entry, EntryPoint::Pvh(0x100_0010));
        assert_eq!(k.kernel_end, 0x100_0000 + 4 + 0x1000);
        let k = load(&m, path, &pvh, EntryPreference::Linux64, "ELF").unwrap();
        assert_eq!(k.entry, EntryPoint::Linux64(0x100_0000));
        let plain = build_elf(0x100_0000, 0x100_0000, &[1], &[]);
        assert_eq!(
            load(&m, path, &plain, EntryPreference::Auto, "ELF")
                .unwrap()
                .entry,
            EntryPoint::Linux64(0x100_0000)
        );
        let err = load(&m, path, &plain, EntryPreference::Pvh, "ELF").unwrap_err();
        assert!(err.to_string().contains("no PVH note"), "{err}");
        let micro = build_elf(
            0x20_0000,
            0x20_0000,
            &[1],
            &[("IOVMM", 1, &1u32.to_le_bytes())],
        );
        assert_eq!(
            load(&m, path, &micro, EntryPreference::Auto, "ELF")
                .unwrap()
                .entry,
            EntryPoint::MicroGuest(0x20_0000)
        );
    }

    #[test]
    fn segments_are_loaded_at_their_physical_address() {
        use vm_memory::Bytes;
        let elf = build_elf(0x100_0000, 0x100_0000, b"IOVMM-CODE", &[]);
        let m = mem();
        load(&m, Path::new("k"), &elf, EntryPreference::Auto, "ELF").unwrap();
        let mut back = [0u8; 10];
        m.read_slice(&mut back, GuestAddress(0x100_0000)).unwrap();
        assert_eq!(&back, b"IOVMM-CODE");
    }

    #[test]
    fn segments_outside_ram_or_below_1m_are_refused() {
        let m = mem();
        for paddr in [0x8000u64, 0x1000_0000, u64::MAX - 4] {
            let elf = build_elf(paddr, paddr, &[1, 2, 3], &[]);
            assert!(
                load(&m, Path::new("k"), &elf, EntryPreference::Auto, "ELF").is_err(),
                "{paddr:#x}"
            );
        }
    }

    #[test]
    fn truncated_and_garbage_images_fail_cleanly() {
        let elf = build_elf(
            0x100_0000,
            0x100_0000,
            &[1; 64],
            &[("Xen", 18, &[1, 2, 3, 4])],
        );
        for cut in [4, 20, 63, 64, 100, 170, elf.len() - 1] {
            let _ = parse(&elf[..cut]);
        }
        let mut bad = elf.clone();
        bad[56] = 0xff; // phnum
        bad[57] = 0xff;
        assert!(parse(&bad).is_err());
        let mut bad = elf;
        bad[18] = 3; // i386
        assert!(parse(&bad).unwrap_err().contains("x86-64"));
    }
}
