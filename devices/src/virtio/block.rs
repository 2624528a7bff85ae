//! virtio-blk (virtio 1.2 §5.2): one request queue over a raw image file. Every request is
//! validated whole before any I/O; every guest buffer is reached through the DMA handle with
//! complete copies (a bounce buffer), so an IOMMU can refuse any of them.

use event_manager::{EventOps, Events, MutEventSubscriber};
use pci::DmaMemory;
use std::fs::File;
use std::os::unix::fs::FileExt;
use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::EventFd;

use super::chain::{Buffer, collect_chain};
use super::device::{ActivateContext, ActivateError, VirtioDevice, VirtioInterruptType};
use super::single_queue::{ActiveQueue, watch};

const SECTOR: u64 = 512;
const QUEUE_SIZE: u16 = 256;
const SEG_MAX: u32 = 126;
/// Largest request data accepted (bounds the bounce buffer).
const MAX_REQUEST: u64 = 4 << 20;
/// Largest segment the driver may use (config size_max): with SEG_MAX segments a request can
/// never exceed MAX_REQUEST, so a guest that raises max_sectors_kb still sees no I/O errors.
const SIZE_MAX: u32 = 32 << 10;
const _: () = assert!(SEG_MAX as u64 * SIZE_MAX as u64 <= MAX_REQUEST);

const F_SIZE_MAX: u64 = 1 << 1;
const F_SEG_MAX: u64 = 1 << 2;
const F_RO: u64 = 1 << 5;
const F_BLK_SIZE: u64 = 1 << 6;
const F_FLUSH: u64 = 1 << 9;

const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;
const ID_LEN: usize = 20;

/// A virtio-blk device.
pub struct Block {
    file: File,
    readonly: bool,
    sectors: u64,
    id: [u8; ID_LEN],
    config: Vec<u8>,
    events: Vec<EventFd>,
    active: Option<ActiveQueue>,
    broken: bool,
    bounce: Vec<u8>,
    warned_dma: bool,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "virtio-blk({})",
            String::from_utf8_lossy(&self.id).trim_end_matches('\0')
        )
    }
}

impl Block {
    /// A disk over `file` (its length rounded down to whole sectors), with serial `id`
    /// (truncated to 20 bytes).
    pub fn new(file: File, readonly: bool, id: &str) -> std::io::Result<Self> {
        let sectors = file.metadata()?.len() / SECTOR;
        let mut id_bytes = [0u8; ID_LEN];
        for (d, s) in id_bytes.iter_mut().zip(id.bytes()) {
            *d = s;
        }
        // Config: capacity (u64), size_max (u32), seg_max (u32), geometry (4), blk_size (u32).
        let mut config = Vec::with_capacity(24);
        config.extend_from_slice(&sectors.to_le_bytes());
        config.extend_from_slice(&SIZE_MAX.to_le_bytes());
        config.extend_from_slice(&SEG_MAX.to_le_bytes());
        config.extend_from_slice(&[0; 4]);
        config.extend_from_slice(&(SECTOR as u32).to_le_bytes());
        Ok(Self {
            file,
            readonly,
            sectors,
            id: id_bytes,
            config,
            events: vec![EventFd::new(libc::EFD_NONBLOCK)?],
            active: None,
            broken: false,
            bounce: Vec::new(),
            warned_dma: false,
        })
    }

    fn warn_dma(&mut self, what: &str, addr: u64) {
        if !self.warned_dma {
            self.warned_dma = true;
            log::warn!("{self:?}: DMA {what} {addr:#x} refused; failing the request (logged once)");
        }
    }

    /// Runs one request; returns (status, bytes written to the guest before the status).
    fn execute(&mut self, mem: &DmaMemory, bufs: &[Buffer]) -> (u8, u32) {
        let Some((header, rest)) = bufs.split_first() else {
            return (S_IOERR, 0);
        };
        let Some((_, data)) = rest.split_last() else {
            return (S_IOERR, 0);
        };
        if header.writable || header.len < 16 {
            return (S_IOERR, 0);
        }
        let mut h = [0u8; 16];
        if mem.read_slice(&mut h, GuestAddress(header.addr)).is_err() {
            self.warn_dma("read of the request header at", header.addr);
            return (S_IOERR, 0);
        }
        let kind = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let sector = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
        let total: u64 = data.iter().map(|b| u64::from(b.len)).sum();
        match kind {
            T_IN | T_OUT => {
                let want_writable = kind == T_IN;
                if data.iter().any(|b| b.writable != want_writable)
                    || !total.is_multiple_of(SECTOR)
                    || total > MAX_REQUEST
                    || sector
                        .checked_add(total / SECTOR)
                        .is_none_or(|end| end > self.sectors)
                {
                    return (S_IOERR, 0);
                }
                if kind == T_OUT && self.readonly {
                    return (S_IOERR, 0);
                }
                self.transfer(mem, data, sector * SECTOR, total as usize, kind == T_IN)
            }
            T_FLUSH => match self.file.sync_data() {
                Ok(()) => (S_OK, 0),
                Err(e) => {
                    log::warn!("{self:?}: flush failed: {e}");
                    (S_IOERR, 0)
                }
            },
            T_GET_ID => {
                let Some(buf) = data.first().filter(|b| b.writable) else {
                    return (S_IOERR, 0);
                };
                let n = (buf.len as usize).min(ID_LEN);
                let id = self.id;
                match mem.write_slice(id.get(..n).unwrap_or(&[]), GuestAddress(buf.addr)) {
                    Ok(()) => (S_OK, n as u32),
                    Err(_) => {
                        self.warn_dma("write of the id to", buf.addr);
                        (S_IOERR, 0)
                    }
                }
            }
            _ => (S_UNSUPP, 0),
        }
    }

    fn transfer(
        &mut self,
        mem: &DmaMemory,
        data: &[Buffer],
        pos: u64,
        total: usize,
        read: bool,
    ) -> (u8, u32) {
        let mut bounce = std::mem::take(&mut self.bounce);
        bounce.resize(total, 0);
        let result = if read {
            self.read_request(mem, data, pos, &mut bounce)
        } else {
            self.write_request(mem, data, pos, &mut bounce)
        };
        self.bounce = bounce;
        result
    }

    fn read_request(
        &mut self,
        mem: &DmaMemory,
        data: &[Buffer],
        pos: u64,
        bounce: &mut [u8],
    ) -> (u8, u32) {
        if let Err(e) = self.file.read_exact_at(bounce, pos) {
            log::warn!("{self:?}: read at byte {pos} failed: {e}");
            return (S_IOERR, 0);
        }
        let mut done = 0usize;
        for b in data {
            let len = b.len as usize;
            let Some(chunk) = bounce.get(done..done + len) else {
                return (S_IOERR, done as u32);
            };
            if mem.write_slice(chunk, GuestAddress(b.addr)).is_err() {
                self.warn_dma("write to", b.addr);
                return (S_IOERR, done as u32);
            }
            done += len;
        }
        (S_OK, done as u32)
    }

    fn write_request(
        &mut self,
        mem: &DmaMemory,
        data: &[Buffer],
        pos: u64,
        bounce: &mut [u8],
    ) -> (u8, u32) {
        let mut done = 0usize;
        for b in data {
            let len = b.len as usize;
            let Some(chunk) = bounce.get_mut(done..done + len) else {
                return (S_IOERR, 0);
            };
            if mem.read_slice(chunk, GuestAddress(b.addr)).is_err() {
                self.warn_dma("read from", b.addr);
                return (S_IOERR, 0);
            }
            done += len;
        }
        match self.file.write_all_at(bounce, pos) {
            Ok(()) => (S_OK, 0),
            Err(e) => {
                log::warn!("{self:?}: write at byte {pos} failed: {e}");
                (S_IOERR, 0)
            }
        }
    }

    /// A queue notification: drain the eventfd and serve requests unless the ring broke.
    fn on_notification(&mut self) {
        if let Some(e) = self.events.first() {
            let _ = e.read();
        }
        if !self.broken {
            self.process_queue();
        }
    }

    fn process_queue(&mut self) {
        let Some(mut active) = self.active.take() else {
            return;
        };
        let mut used_any = false;
        while let Some(chain) = active.queue.pop_descriptor_chain(&active.mem) {
            let head = chain.head_index();
            let Some(bufs) = collect_chain(chain) else {
                log::warn!(
                    "{self:?}: malformed descriptor chain at head {head}; the device needs a reset"
                );
                active.interrupt.set_needs_reset();
                self.broken = true;
                break;
            };
            let status_buf = bufs
                .last()
                .copied()
                .filter(|b| b.writable && b.len >= 1 && bufs.len() >= 2);
            let (status, written) = match status_buf {
                Some(_) => self.execute(&active.mem, &bufs),
                None => (S_IOERR, 0),
            };
            let mut used = written;
            if let Some(sb) = status_buf {
                if active.mem.write_obj(status, GuestAddress(sb.addr)).is_ok() {
                    used += 1;
                } else {
                    self.warn_dma("write of the status byte to", sb.addr);
                }
            }
            if active.queue.add_used(&active.mem, head, used).is_err() {
                log::warn!("{self:?}: the used ring is unreachable; the device needs a reset");
                active.interrupt.set_needs_reset();
                self.broken = true;
                break;
            }
            used_any = true;
        }
        if used_any && active.queue.needs_notification(&active.mem).unwrap_or(true) {
            active.interrupt.trigger(VirtioInterruptType::Queue(0));
        }
        if !self.broken {
            self.active = Some(active);
        }
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        2
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn device_features(&self) -> u64 {
        F_SIZE_MAX | F_SEG_MAX | F_BLK_SIZE | F_FLUSH | if self.readonly { F_RO } else { 0 }
    }

    fn queue_events(&self) -> &[EventFd] {
        &self.events
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        for (i, b) in data.iter_mut().enumerate() {
            if let Some(v) = usize::try_from(offset)
                .ok()
                .and_then(|o| self.config.get(o.checked_add(i)?))
            {
                *b = *v;
            }
        }
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        log::debug!(
            "{self:?}: ignored {}-byte config write at {offset:#x}",
            data.len()
        );
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        let active = ActiveQueue::from_context(ctx)?;
        self.broken = false;
        self.active = Some(active);
        // Requests queued before DRIVER_OK are picked up now.
        self.process_queue();
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
        self.broken = false;
        let _ = self.events.first().map(EventFd::read);
    }
}

impl MutEventSubscriber for Block {
    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        if events.event_set().contains(EventSet::IN) {
            self.on_notification();
        }
    }

    fn init(&mut self, ops: &mut EventOps) {
        let who = format!("{self:?}");
        watch(ops, self.events.first(), &who);
    }
}

#[cfg(test)]
#[path = "block_tests.rs"]
mod tests;
