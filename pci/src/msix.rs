//! MSI-X: the capability's control bits, the vector table and the pending-bit array, and
//! delivery through [`InterruptVectors`] (which the VMM implements with KVM routes and irqfds).
//! Masking is honoured: a vector triggered while masked becomes pending and is delivered when
//! it is unmasked.

use std::fmt;
use std::io;
use std::sync::Arc;

/// MSI-X capability id.
pub const MSIX_CAPABILITY_ID: u8 = 0x11;
const CONTROL_ENABLE: u16 = 1 << 15;
const CONTROL_FUNCTION_MASK: u16 = 1 << 14;
const ENTRY_SIZE: u64 = 16;
const VECTOR_MASKED: u32 = 1;

/// An MSI message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsiMessage {
    /// Address (high dword in bits 63:32).
    pub address: u64,
    /// Data.
    pub data: u32,
}

/// How a function's interrupts reach the CPU.
pub trait InterruptVectors: Send + Sync + fmt::Debug {
    /// Vector `index` now carries `msg`; `masked` when it must not fire.
    fn update(&self, index: u16, msg: MsiMessage, masked: bool) -> io::Result<()>;
    /// Fires vector `index` (only called while it is enabled and unmasked).
    fn trigger(&self, index: u16) -> io::Result<()>;
    /// Sets the function's INTx line level.
    fn set_intx(&self, asserted: bool) -> io::Result<()>;
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    address: u64,
    data: u32,
    control: u32,
}

/// The MSI-X state of one function.
#[derive(Debug)]
pub struct Msix {
    entries: Vec<Entry>,
    pending: Vec<bool>,
    enabled: bool,
    function_masked: bool,
    /// Set once a trigger beyond the table was logged (a device bug; log it once, not per
    /// interrupt).
    warned_out_of_range: bool,
    vectors: Arc<dyn InterruptVectors>,
}

impl Msix {
    /// `count` vectors (1..=2048), all masked, delivered through `vectors`.
    pub fn new(count: u16, vectors: Arc<dyn InterruptVectors>) -> Self {
        let count = usize::from(count.clamp(1, 2048));
        Self {
            entries: vec![
                Entry {
                    control: VECTOR_MASKED,
                    ..Entry::default()
                };
                count
            ],
            pending: vec![false; count],
            enabled: false,
            function_masked: false,
            warned_out_of_range: false,
            vectors,
        }
    }

    /// Number of vectors.
    pub fn count(&self) -> u16 {
        self.entries.len() as u16
    }

    /// Table size in bytes.
    pub fn table_size(&self) -> u64 {
        self.entries.len() as u64 * ENTRY_SIZE
    }

    /// PBA size in bytes (whole qwords).
    pub fn pba_size(&self) -> u64 {
        (self.entries.len() as u64).div_ceil(64) * 8
    }

    /// The capability body (id, next = 0, control, table and PBA offset/BIR) and its write mask.
    pub fn capability(&self, bar: u8, table_offset: u32, pba_offset: u32) -> ([u8; 12], [u8; 12]) {
        let mut body = [0u8; 12];
        body[0] = MSIX_CAPABILITY_ID;
        body[2..4].copy_from_slice(&(self.count() - 1).to_le_bytes());
        body[4..8].copy_from_slice(&(table_offset | u32::from(bar & 7)).to_le_bytes());
        body[8..12].copy_from_slice(&(pba_offset | u32::from(bar & 7)).to_le_bytes());
        let mut mask = [0u8; 12];
        mask[3] = 0xc0;
        (body, mask)
    }

    /// Whether MSI-X is enabled (then INTx is not used).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn masked(&self, index: usize) -> bool {
        !self.enabled
            || self.function_masked
            || self
                .entries
                .get(index)
                .is_none_or(|e| e.control & VECTOR_MASKED != 0)
    }

    fn push(&self, index: usize) {
        let Some(e) = self.entries.get(index) else {
            return;
        };
        let msg = MsiMessage {
            address: e.address,
            data: e.data,
        };
        if let Err(err) = self.vectors.update(index as u16, msg, self.masked(index)) {
            log::warn!("MSI-X vector {index}: route update failed: {err}");
        }
    }

    fn deliver_pending(&mut self) {
        for i in 0..self.entries.len() {
            if self.pending.get(i).copied().unwrap_or(false) && !self.masked(i) {
                if let Some(p) = self.pending.get_mut(i) {
                    *p = false;
                }
                if let Err(e) = self.vectors.trigger(i as u16) {
                    log::warn!("MSI-X vector {i}: delivery failed: {e}");
                }
            }
        }
    }

    /// The guest wrote the capability's message control.
    pub fn set_control(&mut self, control: u16) {
        let enabled = control & CONTROL_ENABLE != 0;
        let function_masked = control & CONTROL_FUNCTION_MASK != 0;
        if (enabled, function_masked) == (self.enabled, self.function_masked) {
            return;
        }
        self.enabled = enabled;
        self.function_masked = function_masked;
        for i in 0..self.entries.len() {
            self.push(i);
        }
        self.deliver_pending();
    }

    /// Reads the vector table (4- or 8-byte aligned accesses; others read zero).
    pub fn table_read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let index = (offset / ENTRY_SIZE) as usize;
        let Some(e) = self.entries.get(index) else {
            return;
        };
        let words = [
            e.address as u32,
            (e.address >> 32) as u32,
            e.data,
            e.control,
        ];
        let word = ((offset % ENTRY_SIZE) / 4) as usize;
        match (data.len(), offset % 4) {
            (4, 0) => data.copy_from_slice(&words.get(word).copied().unwrap_or(0).to_le_bytes()),
            (8, 0) if word.is_multiple_of(2) => {
                let lo = u64::from(words.get(word).copied().unwrap_or(0));
                let hi = u64::from(words.get(word + 1).copied().unwrap_or(0));
                data.copy_from_slice(&(lo | (hi << 32)).to_le_bytes());
            }
            _ => {}
        }
    }

    /// Writes the vector table.
    pub fn table_write(&mut self, offset: u64, data: &[u8]) {
        let index = (offset / ENTRY_SIZE) as usize;
        let word = ((offset % ENTRY_SIZE) / 4) as usize;
        let values: Vec<(usize, u32)> = match (data.len(), offset % 4) {
            (4, 0) => vec![(
                word,
                u32::from_le_bytes(data.try_into().unwrap_or_default()),
            )],
            (8, 0) if word.is_multiple_of(2) => {
                let v = u64::from_le_bytes(data.try_into().unwrap_or_default());
                vec![(word, v as u32), (word + 1, (v >> 32) as u32)]
            }
            _ => {
                log::debug!(
                    "MSI-X table: ignored {}-byte access at {offset:#x}",
                    data.len()
                );
                return;
            }
        };
        let Some(e) = self.entries.get_mut(index) else {
            return;
        };
        let was_masked = e.control & VECTOR_MASKED != 0;
        for (w, v) in values {
            match w {
                0 => e.address = (e.address & !0xffff_ffff) | u64::from(v),
                1 => e.address = (e.address & 0xffff_ffff) | (u64::from(v) << 32),
                2 => e.data = v,
                3 => e.control = v & VECTOR_MASKED,
                _ => {}
            }
        }
        let now_masked = e.control & VECTOR_MASKED != 0;
        self.push(index);
        if was_masked && !now_masked {
            self.deliver_pending();
        }
    }

    /// Reads the pending-bit array.
    pub fn pba_read(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            let bit0 = (offset + i as u64) * 8;
            let mut v = 0u8;
            for bit in 0..8u64 {
                if self
                    .pending
                    .get((bit0 + bit) as usize)
                    .copied()
                    .unwrap_or(false)
                {
                    v |= 1 << bit;
                }
            }
            *b = v;
        }
    }

    /// Fires vector `index`, or marks it pending while masked.
    pub fn trigger(&mut self, index: u16) {
        let i = usize::from(index);
        if i >= self.entries.len() {
            if !self.warned_out_of_range {
                self.warned_out_of_range = true;
                log::warn!(
                    "MSI-X: vector {index} beyond the table of {}; ignored (logged once)",
                    self.entries.len()
                );
            }
            return;
        }
        if self.masked(i) {
            if let Some(p) = self.pending.get_mut(i) {
                *p = true;
            }
            return;
        }
        if let Err(e) = self.vectors.trigger(index) {
            log::warn!("MSI-X vector {index}: delivery failed: {e}");
        }
    }

    /// Back to reset: disabled, every vector masked, nothing pending.
    pub fn reset(&mut self) {
        for e in &mut self.entries {
            *e = Entry {
                control: VECTOR_MASKED,
                ..Entry::default()
            };
        }
        self.pending.fill(false);
        self.enabled = false;
        self.function_masked = false;
        for i in 0..self.entries.len() {
            self.push(i);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    pub(crate) struct Recorder {
        pub(crate) fired: Mutex<Vec<u16>>,
        pub(crate) routes: Mutex<Vec<(u16, MsiMessage, bool)>>,
        pub(crate) intx: Mutex<Vec<bool>>,
    }

    impl InterruptVectors for Recorder {
        fn update(&self, index: u16, msg: MsiMessage, masked: bool) -> io::Result<()> {
            self.routes.lock().unwrap().push((index, msg, masked));
            Ok(())
        }
        fn trigger(&self, index: u16) -> io::Result<()> {
            self.fired.lock().unwrap().push(index);
            Ok(())
        }
        fn set_intx(&self, asserted: bool) -> io::Result<()> {
            self.intx.lock().unwrap().push(asserted);
            Ok(())
        }
    }

    fn msix() -> (Msix, Arc<Recorder>) {
        let r = Arc::new(Recorder::default());
        (Msix::new(3, r.clone()), r)
    }

    #[test]
    fn table_reads_back_what_was_written_in_4_and_8_byte_accesses() {
        let (mut m, _) = msix();
        m.table_write(16, &0x1_fee0_1000u64.to_le_bytes());
        m.table_write(24, &0x4041u32.to_le_bytes());
        let mut q = [0u8; 8];
        m.table_read(16, &mut q);
        assert_eq!(u64::from_le_bytes(q), 0x1_fee0_1000);
        let mut d = [0u8; 4];
        m.table_read(24, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x4041);
        m.table_read(28, &mut d);
        assert_eq!(u32::from_le_bytes(d), 1, "vectors start masked");
        m.table_write(18, &[1, 2]);
        m.table_read(16, &mut q);
        assert_eq!(
            u64::from_le_bytes(q),
            0x1_fee0_1000,
            "a 2-byte access is ignored"
        );
        m.table_write(1000, &[0; 4]);
        m.table_read(1000, &mut d);
        assert_eq!(d, [0; 4]);
    }

    #[test]
    fn masked_vectors_become_pending_and_fire_on_unmask() {
        let (mut m, r) = msix();
        m.set_control(CONTROL_ENABLE);
        m.table_write(0, &0xfee0_0000u32.to_le_bytes());
        m.trigger(0);
        assert!(r.fired.lock().unwrap().is_empty());
        let mut p = [0u8; 8];
        m.pba_read(0, &mut p);
        assert_eq!(p[0], 1);
        m.table_write(12, &0u32.to_le_bytes());
        assert_eq!(*r.fired.lock().unwrap(), vec![0]);
        m.pba_read(0, &mut p);
        assert_eq!(p[0], 0);
        m.trigger(0);
        assert_eq!(*r.fired.lock().unwrap(), vec![0, 0]);
        m.trigger(7);
        assert_eq!(
            r.fired.lock().unwrap().len(),
            2,
            "beyond the table: ignored"
        );
    }

    #[test]
    fn function_mask_and_enable_gate_delivery() {
        let (mut m, r) = msix();
        m.table_write(12, &0u32.to_le_bytes());
        m.trigger(0);
        assert!(r.fired.lock().unwrap().is_empty(), "disabled");
        m.set_control(CONTROL_ENABLE | CONTROL_FUNCTION_MASK);
        assert!(r.fired.lock().unwrap().is_empty(), "function masked");
        m.set_control(CONTROL_ENABLE);
        assert_eq!(
            *r.fired.lock().unwrap(),
            vec![0],
            "pending delivered on function unmask"
        );
        let routes = r.routes.lock().unwrap();
        assert!(routes.iter().any(|(i, _, masked)| *i == 0 && !masked));
    }

    #[test]
    fn capability_layout() {
        let (m, _) = msix();
        let (body, mask) = m.capability(0, 0x4000, 0x5000);
        assert_eq!(body[0], 0x11);
        assert_eq!(u16::from_le_bytes([body[2], body[3]]), 2, "table size - 1");
        assert_eq!(
            u32::from_le_bytes([body[4], body[5], body[6], body[7]]),
            0x4000
        );
        assert_eq!(
            u32::from_le_bytes([body[8], body[9], body[10], body[11]]),
            0x5000
        );
        assert_eq!(mask[3], 0xc0, "enable and function mask are writable");
    }
}
