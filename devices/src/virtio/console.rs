//! virtio-console (virtio 1.2 §5.3), one port without MULTIPORT: transmitq0 bytes go to an
//! output (terminal or file), bytes read from an input fd (the terminal, through a pipe the VMM
//! feeds) go into receiveq0 buffers as the driver provides them. With EMERG_WRITE the driver can
//! also write single characters through the configuration space before the queues exist.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use event_manager::{EventOps, Events, MutEventSubscriber};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::EventFd;

use super::chain::collect_chain;
use super::device::{ActivateContext, ActivateError, VirtioDevice, VirtioInterruptType};
use super::single_queue::ActiveQueue;

const RECEIVEQ: usize = 0;
const TRANSMITQ: usize = 1;
const QUEUE_SIZE: u16 = 128;
const F_EMERG_WRITE: u64 = 1 << 2;
const EMERG_WR_OFFSET: u64 = 8;
/// Input held while the driver has no receive buffers.
const MAX_PENDING_INPUT: usize = 64 * 1024;
/// Largest transmit buffer copied at once.
const MAX_TX_BUFFER: usize = 64 * 1024;
const TAG_RX: u32 = 0;
const TAG_TX: u32 = 1;
const TAG_INPUT: u32 = 2;

/// A virtio console.
pub struct Console {
    output: Box<dyn Write + Send>,
    input: Option<File>,
    events: Vec<EventFd>,
    pending: VecDeque<u8>,
    rx: Option<Queue>,
    tx: Option<Queue>,
    active: Option<ActiveQueue>,
    bounce: Vec<u8>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("virtio-console")
    }
}

impl Console {
    /// A console writing to `output` and, when given, reading `input` (non-blocking).
    pub fn new(output: Box<dyn Write + Send>, input: Option<File>) -> std::io::Result<Self> {
        Ok(Self {
            output,
            input,
            events: vec![
                EventFd::new(libc::EFD_NONBLOCK)?,
                EventFd::new(libc::EFD_NONBLOCK)?,
            ],
            pending: VecDeque::new(),
            rx: None,
            tx: None,
            active: None,
            bounce: Vec::new(),
        })
    }

    /// Sends transmitq buffers to the output.
    fn transmit(&mut self) -> bool {
        let (Some(active), Some(queue)) = (self.active.as_ref(), self.tx.as_mut()) else {
            return true;
        };
        let mut used_any = false;
        while let Some(chain) = queue.pop_descriptor_chain(&active.mem) {
            let head = chain.head_index();
            let Some(bufs) = collect_chain(chain) else {
                log::warn!("virtio-console: malformed transmit chain; the device needs a reset");
                active.interrupt.set_needs_reset();
                return false;
            };
            for b in bufs.iter().filter(|b| !b.writable) {
                self.bounce.resize((b.len as usize).min(MAX_TX_BUFFER), 0);
                if active
                    .mem
                    .read_slice(&mut self.bounce, GuestAddress(b.addr))
                    .is_err()
                {
                    log::warn!(
                        "virtio-console: transmit buffer at {:#x} unreachable",
                        b.addr
                    );
                    break;
                }
                let _ = self.output.write_all(&self.bounce);
            }
            if queue.add_used(&active.mem, head, 0).is_err() {
                active.interrupt.set_needs_reset();
                return false;
            }
            used_any = true;
        }
        let _ = self.output.flush();
        if used_any && queue.needs_notification(&active.mem).unwrap_or(true) {
            active
                .interrupt
                .trigger(VirtioInterruptType::Queue(TRANSMITQ as u16));
        }
        true
    }

    /// Moves held input into receive buffers the driver offered.
    fn receive(&mut self) -> bool {
        let (Some(active), Some(queue)) = (self.active.as_ref(), self.rx.as_mut()) else {
            return true;
        };
        let mut used_any = false;
        while !self.pending.is_empty() {
            let Some(chain) = queue.pop_descriptor_chain(&active.mem) else {
                break;
            };
            let head = chain.head_index();
            let Some(bufs) = collect_chain(chain) else {
                log::warn!("virtio-console: malformed receive chain; the device needs a reset");
                active.interrupt.set_needs_reset();
                return false;
            };
            let mut written = 0u32;
            for b in bufs.iter().filter(|b| b.writable) {
                let n = (b.len as usize).min(self.pending.len());
                let bytes: Vec<u8> = self.pending.iter().take(n).copied().collect();
                if active
                    .mem
                    .write_slice(&bytes, GuestAddress(b.addr))
                    .is_err()
                {
                    log::warn!(
                        "virtio-console: receive buffer at {:#x} unreachable",
                        b.addr
                    );
                    break;
                }
                self.pending.drain(..n);
                written += n as u32;
            }
            if queue.add_used(&active.mem, head, written).is_err() {
                active.interrupt.set_needs_reset();
                return false;
            }
            used_any = true;
        }
        if used_any && queue.needs_notification(&active.mem).unwrap_or(true) {
            active
                .interrupt
                .trigger(VirtioInterruptType::Queue(RECEIVEQ as u16));
        }
        true
    }

    /// Reads what the input has; false at end of file (stop watching it).
    fn read_input(&mut self) -> bool {
        let Some(input) = self.input.as_mut() else {
            return false;
        };
        let mut buf = [0u8; 4096];
        loop {
            match input.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let room = MAX_PENDING_INPUT.saturating_sub(self.pending.len());
                    self.pending.extend(buf.iter().take(n.min(room)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("virtio-console: input failed: {e}");
                    return false;
                }
            }
        }
    }

    fn serve(&mut self) {
        if !(self.transmit() && self.receive()) {
            self.active = None;
            self.rx = None;
            self.tx = None;
        }
    }
}

impl VirtioDevice for Console {
    fn device_type(&self) -> u32 {
        3
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn device_features(&self) -> u64 {
        F_EMERG_WRITE
    }

    fn queue_events(&self) -> &[EventFd] {
        &self.events
    }

    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        // cols, rows, max_nr_ports and emerg_wr all read 0 (no size, no multiport).
        data.fill(0);
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        if offset == EMERG_WR_OFFSET
            && let Some(&c) = data.first()
        {
            let _ = self.output.write_all(&[c]);
            let _ = self.output.flush();
        }
    }

    fn activate(&mut self, mut ctx: ActivateContext) -> Result<(), ActivateError> {
        let tx = ctx
            .queues
            .pop()
            .filter(|q| usize::from(q.index) == TRANSMITQ)
            .ok_or(ActivateError::MissingQueue(TRANSMITQ as u16))?;
        let rx = ctx
            .queues
            .pop()
            .filter(|q| usize::from(q.index) == RECEIVEQ)
            .ok_or(ActivateError::MissingQueue(RECEIVEQ as u16))?;
        self.tx = Some(tx.queue);
        self.rx = Some(rx.queue);
        // ActiveQueue holds the shared handles; its own queue slot is unused here.
        self.active = Some(ActiveQueue {
            mem: ctx.mem,
            queue: Queue::new(1).map_err(|e| ActivateError::BadQueue {
                index: 0,
                reason: e.to_string(),
            })?,
            interrupt: ctx.interrupt,
        });
        self.serve();
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
        self.rx = None;
        self.tx = None;
        for e in &self.events {
            let _ = e.read();
        }
    }
}

impl MutEventSubscriber for Console {
    fn process(&mut self, events: Events, ops: &mut EventOps) {
        match events.data() {
            TAG_RX | TAG_TX => {
                if let Some(e) = self.events.get(events.data() as usize) {
                    let _ = e.read();
                }
            }
            TAG_INPUT => {
                if !self.read_input()
                    && let Some(input) = self.input.take()
                {
                    let _ = ops.remove(Events::with_data(&input, TAG_INPUT, EventSet::IN));
                }
            }
            _ => {}
        }
        self.serve();
    }

    fn init(&mut self, ops: &mut EventOps) {
        let mut watch = |fd: RawFd, tag: u32| {
            if let Err(e) = ops.add(Events::with_data_raw(fd, tag, EventSet::IN)) {
                log::error!("virtio-console: cannot watch fd {fd}: {e:?}");
            }
        };
        if let Some(e) = self.events.get(RECEIVEQ) {
            watch(e.as_raw_fd(), TAG_RX);
        }
        if let Some(e) = self.events.get(TRANSMITQ) {
            watch(e.as_raw_fd(), TAG_TX);
        }
        if let Some(input) = &self.input {
            watch(input.as_raw_fd(), TAG_INPUT);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use iommu::RequesterId;
    use pci::DeviceDma;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    use super::*;
    use crate::virtio::device::QueueContext;
    use crate::virtio::test_ring::{FakeInterrupt, TestRing, WRITE};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn pipe() -> (File, File) {
        use std::os::fd::FromRawFd;
        let mut fds = [0i32; 2];
        // SAFETY: `fds` has room for the two descriptors.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK) };
        assert_eq!(rc, 0);
        // SAFETY: both descriptors are open and owned by nobody else.
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }

    #[test]
    fn output_in_order_and_input_waits_for_receive_buffers() {
        let guest = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        let mut rx = TestRing::new(&guest, 0x1_0000, 8);
        let mut tx = TestRing::new(&guest, 0x2_0000, 8);
        let out = Sink::default();
        let (read_end, mut write_end) = pipe();
        let mut c = Console::new(Box::new(out.clone()), Some(read_end)).unwrap();
        let irq = Arc::new(FakeInterrupt::default());
        c.activate(ActivateContext {
            mem: DeviceDma::memory(guest.clone(), RequesterId::new(0, 0, 3, 0), None),
            queues: vec![
                QueueContext {
                    index: 0,
                    queue: rx.queue(),
                },
                QueueContext {
                    index: 1,
                    queue: tx.queue(),
                },
            ],
            interrupt: irq.clone(),
            acked_features: 0,
        })
        .unwrap();

        guest.write_slice(b"hello ", GuestAddress(0x5000)).unwrap();
        guest.write_slice(b"world", GuestAddress(0x6000)).unwrap();
        tx.submit(&[(0x5000, 6, 0), (0x6000, 5, 0)]);
        c.serve();
        assert_eq!(&*out.0.lock().unwrap(), b"hello world");
        assert_eq!(tx.used_idx(), 1);

        // Typed input with no receive buffer yet is held...
        write_end.write_all(b"ls\n").unwrap();
        assert!(c.read_input());
        c.serve();
        assert_eq!(rx.used_idx(), 0);
        // ...and delivered into the next buffers, split across them.
        rx.submit(&[(0x7000, 2, WRITE)]);
        rx.submit(&[(0x7100, 64, WRITE)]);
        c.serve();
        assert_eq!(rx.used_idx(), 2);
        assert_eq!((rx.used(0).1, rx.used(1).1), (2, 1));
        let mut got = [0u8; 3];
        guest
            .read_slice(&mut got[..2], GuestAddress(0x7000))
            .unwrap();
        guest
            .read_slice(&mut got[2..], GuestAddress(0x7100))
            .unwrap();
        assert_eq!(&got, b"ls\n");
        assert!(
            irq.triggered
                .lock()
                .unwrap()
                .contains(&VirtioInterruptType::Queue(0))
        );
        // End of input: stop reading it.
        drop(write_end);
        assert!(!c.read_input());
    }

    #[test]
    fn emergency_write_goes_straight_out() {
        let out = Sink::default();
        let mut c = Console::new(Box::new(out.clone()), None).unwrap();
        assert_ne!(c.device_features() & F_EMERG_WRITE, 0);
        c.write_config(EMERG_WR_OFFSET, &[b'!', 0, 0, 0]);
        c.write_config(0, b"x");
        assert_eq!(&*out.0.lock().unwrap(), b"!");
    }
}
