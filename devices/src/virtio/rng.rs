//! virtio-rng (virtio 1.2 §5.4): fills every device-writable buffer with bytes from the host's
//! getrandom(2).

use event_manager::{EventOps, Events, MutEventSubscriber};
use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::EventFd;

use super::chain::collect_chain;
use super::device::{ActivateContext, ActivateError, VirtioDevice, VirtioInterruptType};
use super::single_queue::{ActiveQueue, watch};

/// Most bytes given per buffer (a guest asking for more gets a short, honest used length).
const MAX_PER_BUFFER: usize = 64 * 1024;

/// A virtio entropy device.
pub struct Rng {
    events: Vec<EventFd>,
    active: Option<ActiveQueue>,
    bytes: Vec<u8>,
    /// A bad request was logged already (a hostile guest must not flood the log).
    warned: bool,
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("virtio-rng")
    }
}

fn fill_random(buf: &mut [u8]) -> bool {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        // SAFETY: the pointer and length describe `rest`, a live mutable slice.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n <= 0 {
            return false;
        }
        done += n as usize;
    }
    true
}

impl Rng {
    /// A new device.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            events: vec![EventFd::new(libc::EFD_NONBLOCK)?],
            active: None,
            bytes: Vec::new(),
            warned: false,
        })
    }

    fn process_queue(&mut self) {
        let Some(mut active) = self.active.take() else {
            return;
        };
        let mut used_any = false;
        let mut broken = false;
        while let Some(chain) = active.queue.pop_descriptor_chain(&active.mem) {
            let head = chain.head_index();
            let Some(bufs) = collect_chain(chain) else {
                log::warn!("virtio-rng: malformed descriptor chain; the device needs a reset");
                active.interrupt.set_needs_reset();
                broken = true;
                break;
            };
            let mut written = 0u32;
            if bufs.iter().any(|b| !b.writable) {
                // The device only writes; a device-readable buffer means a confused or hostile
                // driver. Complete the request empty rather than guess what it meant.
                if !self.warned {
                    self.warned = true;
                    log::warn!("virtio-rng: request with a device-readable buffer (logged once)");
                }
            } else {
                for b in &bufs {
                    let len = (b.len as usize).min(MAX_PER_BUFFER);
                    self.bytes.resize(len, 0);
                    if !fill_random(&mut self.bytes)
                        || active
                            .mem
                            .write_slice(&self.bytes, GuestAddress(b.addr))
                            .is_err()
                    {
                        if !self.warned {
                            self.warned = true;
                            log::warn!(
                                "virtio-rng: buffer at {:#x} unreachable (logged once)",
                                b.addr
                            );
                        }
                        break;
                    }
                    // At most 256 buffers of at most 64 KiB each: no overflow.
                    written = written.saturating_add(len as u32);
                }
            }
            if active.queue.add_used(&active.mem, head, written).is_err() {
                active.interrupt.set_needs_reset();
                broken = true;
                break;
            }
            used_any = true;
        }
        if used_any && active.queue.needs_notification(&active.mem).unwrap_or(true) {
            active.interrupt.trigger(VirtioInterruptType::Queue(0));
        }
        if !broken {
            self.active = Some(active);
        }
    }
}

impl VirtioDevice for Rng {
    fn device_type(&self) -> u32 {
        4
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[64]
    }

    fn device_features(&self) -> u64 {
        0
    }

    fn queue_events(&self) -> &[EventFd] {
        &self.events
    }

    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        let active = ActiveQueue::from_context(ctx)?;
        self.active = Some(active);
        self.process_queue();
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
        let _ = self.events.first().map(EventFd::read);
    }
}

impl MutEventSubscriber for Rng {
    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        if events.event_set().contains(EventSet::IN) {
            if let Some(e) = self.events.first() {
                let _ = e.read();
            }
            self.process_queue();
        }
    }

    fn init(&mut self, ops: &mut EventOps) {
        let who = format!("{self:?}");
        watch(ops, self.events.first(), &who);
    }
}

#[cfg(test)]
#[path = "rng_tests.rs"]
mod tests;
