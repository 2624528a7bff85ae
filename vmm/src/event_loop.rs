//! The VMM's event thread (event-manager): console input, virtio queue notifications, the stop
//! signal and the timeout. vCPUs never process device queues; this thread does.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use devices::legacy::SerialPort;
use event_manager::{EventManager, EventOps, Events, MutEventSubscriber, SubscriberOps};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::timerfd::TimerFd;

use crate::stop::{StopReason, StopState};

/// What the event manager holds.
pub type Subscriber = Arc<Mutex<dyn MutEventSubscriber + Send>>;

/// Ctrl-A, the escape key on the serial console (as in QEMU): Ctrl-A x quits, Ctrl-A Ctrl-A
/// sends one Ctrl-A.
const ESCAPE: u8 = 0x01;
/// Most bytes held back while the guest's receive FIFO is full.
const MAX_PENDING_INPUT: usize = 64 * 1024;
/// How often held-back input is offered again.
const INPUT_RETRY: Duration = Duration::from_millis(10);

/// Where typed bytes go.
pub enum InputSink {
    /// The COM1 UART.
    Serial(Arc<Mutex<SerialPort>>),
    /// A pipe read by the virtio console.
    Pipe(std::fs::File),
}

/// Reads stdin and feeds the guest's console, handling the escape key in raw mode.
pub struct StdinInput {
    sink: InputSink,
    stop: Arc<StopState>,
    escape_enabled: bool,
    escape_pending: bool,
    pending: VecDeque<u8>,
    retry: TimerFd,
    stdin_watched: bool,
}

impl StdinInput {
    /// Feeds `sink`; with `escape_enabled`, Ctrl-A x stops the VM.
    pub fn new(
        sink: InputSink,
        stop: Arc<StopState>,
        escape_enabled: bool,
    ) -> std::io::Result<Self> {
        Ok(Self {
            sink,
            stop,
            escape_enabled,
            escape_pending: false,
            pending: VecDeque::new(),
            retry: TimerFd::new()?,
            stdin_watched: false,
        })
    }

    fn filter(&mut self, input: &[u8]) {
        for &b in input {
            if self.escape_pending {
                self.escape_pending = false;
                match b {
                    b'x' | b'X' => {
                        self.stop.stop(StopReason::UserQuit);
                        return;
                    }
                    ESCAPE => self.queue(ESCAPE),
                    _ => {}
                }
            } else if self.escape_enabled && b == ESCAPE {
                self.escape_pending = true;
            } else {
                self.queue(b);
            }
        }
    }

    fn queue(&mut self, b: u8) {
        if self.pending.len() < MAX_PENDING_INPUT {
            self.pending.push_back(b);
        }
    }

    /// Offers held-back bytes to the sink; returns true when all were taken.
    fn flush_pending(&mut self) -> bool {
        match &mut self.sink {
            InputSink::Serial(port) => {
                let mut port = port.lock().unwrap_or_else(PoisonError::into_inner);
                let (a, _) = self.pending.as_slices();
                let taken = port.enqueue_input(a);
                self.pending.drain(..taken);
                if self.pending.is_empty() {
                    return true;
                }
                let rest: Vec<u8> = self.pending.iter().copied().collect();
                let taken = port.enqueue_input(&rest);
                self.pending.drain(..taken);
            }
            InputSink::Pipe(pipe) => {
                use std::io::Write;
                let bytes: Vec<u8> = self.pending.drain(..).collect();
                if let Err(e) = pipe.write_all(&bytes) {
                    log::warn!("console input dropped: {e}");
                }
            }
        }
        self.pending.is_empty()
    }

    fn update_watches(&mut self, ops: &mut EventOps) {
        let stdin = std::io::stdin();
        if self.pending.is_empty() {
            let _ = self.retry.reset(Duration::ZERO, None);
            if !self.stdin_watched {
                self.stdin_watched = ops.add(Events::new(&stdin, EventSet::IN)).is_ok();
            }
        } else {
            let _ = self.retry.reset(INPUT_RETRY, None);
            if self.stdin_watched {
                let _ = ops.remove(Events::new(&stdin, EventSet::IN));
                self.stdin_watched = false;
            }
        }
    }
}

impl MutEventSubscriber for StdinInput {
    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.retry, EventSet::IN)) {
            log::warn!("console input: cannot watch the retry timer: {e:?}");
        }
        self.update_watches(ops);
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if events.fd() == self.retry.as_raw_fd() {
            let _ = self.retry.wait();
        } else {
            let mut buf = [0u8; 256];
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) => {
                    // End of input: stop watching, the guest keeps running.
                    let _ = ops.remove(Events::new(&std::io::stdin(), EventSet::IN));
                    self.stdin_watched = false;
                    return;
                }
                Ok(n) => self.filter(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("reading the terminal failed: {e}; console input is off");
                    let _ = ops.remove(Events::new(&std::io::stdin(), EventSet::IN));
                    self.stdin_watched = false;
                    return;
                }
            }
        }
        self.flush_pending();
        self.update_watches(ops);
    }
}

/// Wakes the loop when a stop is requested.
struct StopWatch(Arc<StopState>);

impl MutEventSubscriber for StopWatch {
    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(self.0.wake_fd(), EventSet::IN)) {
            log::error!("cannot watch the stop eventfd: {e:?}");
        }
    }

    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        let _ = self.0.wake_fd().read();
    }
}

/// The event thread's loop.
pub struct EventLoop {
    manager: EventManager<Subscriber>,
    stop: Arc<StopState>,
}

impl EventLoop {
    /// A loop that ends when `stop` is requested.
    pub fn new(stop: Arc<StopState>) -> anyhow::Result<Self> {
        let mut manager = EventManager::<Subscriber>::new()
            .map_err(|e| anyhow::anyhow!("cannot create the event loop: {e:?}"))?;
        manager.add_subscriber(Arc::new(Mutex::new(StopWatch(stop.clone()))));
        Ok(Self { manager, stop })
    }

    /// Adds a subscriber (a device, the console input).
    pub fn add(&mut self, subscriber: Subscriber) {
        self.manager.add_subscriber(subscriber);
    }

    /// Runs until a stop is requested or `timeout` expires (then the stop reason is Timeout).
    pub fn run(&mut self, timeout: Option<u64>) -> anyhow::Result<()> {
        let deadline = timeout.map(|s| (s, Instant::now() + Duration::from_secs(s)));
        while !self.stop.is_stopping() {
            let wait_ms = match deadline {
                Some((secs, at)) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.stop.stop(StopReason::Timeout(secs));
                        break;
                    }
                    i32::try_from(left.as_millis().min(1000)).unwrap_or(1000)
                }
                None => 1000,
            };
            if let Err(e) = self.manager.run_with_timeout(wait_ms) {
                // EINTR from a signal is not an error worth stopping for.
                log::debug!("event loop: {e:?}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(escape: bool) -> (StdinInput, Arc<StopState>, std::fs::File) {
        let stop = Arc::new(StopState::new().unwrap());
        let (r, w) = pipe();
        (
            StdinInput::new(InputSink::Pipe(w), stop.clone(), escape).unwrap(),
            stop,
            r,
        )
    }

    fn pipe() -> (std::fs::File, std::fs::File) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        use std::os::fd::FromRawFd;
        // SAFETY: pipe() just returned these descriptors and nothing else owns them.
        unsafe {
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        }
    }

    fn drain(mut r: std::fs::File, inp: StdinInput) -> Vec<u8> {
        drop(inp);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn ctrl_a_x_quits_and_swallows_the_escape() {
        let (mut inp, stop, r) = input(true);
        inp.filter(b"ab\x01x");
        inp.flush_pending();
        assert_eq!(stop.reason(), Some(StopReason::UserQuit));
        assert_eq!(drain(r, inp), b"ab");
    }

    #[test]
    fn ctrl_a_twice_sends_one() {
        let (mut inp, stop, r) = input(true);
        inp.filter(b"\x01\x01z");
        inp.flush_pending();
        assert!(!stop.is_stopping());
        assert_eq!(drain(r, inp), b"\x01z");
    }

    #[test]
    fn without_escape_ctrl_a_passes_through() {
        let (mut inp, stop, r) = input(false);
        inp.filter(b"\x01x");
        inp.flush_pending();
        assert!(!stop.is_stopping());
        assert_eq!(drain(r, inp), b"\x01x");
    }

    #[test]
    fn timeout_stops_the_loop() {
        let stop = Arc::new(StopState::new().unwrap());
        let mut lp = EventLoop::new(stop.clone()).unwrap();
        let t = Instant::now();
        lp.run(Some(1)).unwrap();
        assert_eq!(stop.reason(), Some(StopReason::Timeout(1)));
        assert!(t.elapsed() >= Duration::from_secs(1));
    }
}
