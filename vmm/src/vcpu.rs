//! One thread per vCPU: run it, dispatch its exits to the buses, survive what the host cannot
//! emulate where that is safe, and stop the VM with a clear report otherwise.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kvm_bindings::{KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN};
use kvm_ioctls::{VcpuExit, VcpuFd};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::signal::{Killable, SIGRTMIN, register_signal_handler};

use crate::emulation::{self, Recovery};
use crate::io_bus::IoBus;
use crate::stop::{StopReason, StopState};
use devices::legacy::StopRequest;

/// The signal that kicks a vCPU thread out of KVM_RUN.
fn kick_signal() -> i32 {
    SIGRTMIN()
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the (empty) kick handler once, so that the signal interrupts KVM_RUN (EINTR) instead
/// of killing the process.
pub fn install_kick_handler() -> anyhow::Result<()> {
    register_signal_handler(kick_signal(), on_kick)
        .map_err(|e| anyhow::anyhow!("cannot install the vCPU kick signal handler: {e}"))
}

/// A vCPU and what its exits need.
pub struct Vcpu {
    index: u8,
    fd: VcpuFd,
    bus: Arc<IoBus>,
    stop: Arc<StopState>,
    mem: GuestMemoryMmap,
}

impl Vcpu {
    /// Wraps a configured vCPU.
    pub fn new(
        index: u8,
        fd: VcpuFd,
        bus: Arc<IoBus>,
        stop: Arc<StopState>,
        mem: GuestMemoryMmap,
    ) -> Self {
        Self {
            index,
            fd,
            bus,
            stop,
            mem,
        }
    }

    /// Starts the vCPU on its own thread.
    pub fn spawn(self) -> anyhow::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("vcpu{}", self.index))
            .spawn(move || self.run())
            .map_err(|e| anyhow::anyhow!("cannot start a vCPU thread: {e}"))
    }

    fn crash(&self, what: String) {
        self.stop.stop(StopReason::GuestCrash(format!(
            "vCPU {}: {what}",
            self.index
        )));
    }

    fn run(mut self) {
        // Consecutive emulation failures at one RIP: a workaround that does not make progress
        // must not loop forever.
        let mut last_failure: Option<(u64, u32)> = None;
        while !self.stop.is_stopping() {
            let exit = match self.fd.run() {
                Ok(exit) => exit,
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
                Err(e) => {
                    let report = emulation::describe_state(&self.fd, &self.mem);
                    self.crash(format!("KVM_RUN failed: {e}\n{report}"));
                    break;
                }
            };
            match exit {
                VcpuExit::IoIn(port, data) => {
                    if data.len() <= 4 {
                        self.bus.pio_read(port, data);
                    } else {
                        // String I/O (rep insb): KVM does not tell us the element size here;
                        // byte-sized elements are the common case.
                        for byte in data.chunks_mut(1) {
                            self.bus.pio_read(port, byte);
                        }
                    }
                }
                VcpuExit::IoOut(port, data) => {
                    if data.len() <= 4 {
                        self.bus.pio_write(port, data);
                    } else {
                        for byte in data.chunks(1) {
                            self.bus.pio_write(port, byte);
                        }
                    }
                }
                VcpuExit::MmioRead(addr, data) => self.bus.mmio_read(addr, data),
                VcpuExit::MmioWrite(addr, data) => self.bus.mmio_write(addr, data),
                VcpuExit::Hlt => {
                    // The in-kernel LAPIC handles HLT; an exit means interrupts are off for good.
                    self.crash("halted with interrupts disabled".into());
                }
                VcpuExit::Shutdown => {
                    let report = emulation::describe_state(&self.fd, &self.mem);
                    self.crash(format!("triple fault (CPU reset)\n{report}"));
                }
                VcpuExit::SystemEvent(kind, _) => match kind {
                    KVM_SYSTEM_EVENT_SHUTDOWN => {
                        self.stop.stop(StopReason::Guest(StopRequest::PowerOff))
                    }
                    KVM_SYSTEM_EVENT_RESET => self
                        .stop
                        .stop(StopReason::Guest(StopRequest::Reset("KVM system event"))),
                    KVM_SYSTEM_EVENT_CRASH => self.crash("guest reported a crash".into()),
                    other => log::debug!("vCPU {}: ignoring system event {other}", self.index),
                },
                VcpuExit::InternalError => {
                    match emulation::recover(&mut self.fd, &self.mem, &mut last_failure) {
                        Recovery::Resumed(what) => log::debug!("vCPU {}: {what}", self.index),
                        Recovery::Fatal(report) => self.crash(report),
                    }
                }
                VcpuExit::FailEntry(reason, cpu) => {
                    let report = emulation::describe_state(&self.fd, &self.mem);
                    self.crash(format!(
                        "VM entry failed (hardware reason {reason:#x} on host CPU {cpu})\n{report}"
                    ));
                }
                VcpuExit::Intr | VcpuExit::IrqWindowOpen => {}
                other => {
                    let what = format!("{other:?}");
                    let report = emulation::describe_state(&self.fd, &self.mem);
                    self.crash(format!("unexpected exit {what}\n{report}"));
                }
            }
        }
        log::debug!("vCPU {} stopped", self.index);
    }
}

/// Stops the vCPU threads: they see the stop flag after the kick interrupts KVM_RUN. Threads
/// that do not leave within `patience` are left behind (the process is about to exit).
pub fn stop_all(threads: Vec<JoinHandle<()>>, patience: Duration) {
    let deadline = std::time::Instant::now() + patience;
    for thread in threads {
        // The kick can land just before KVM_RUN is entered; repeat until the thread is gone.
        while !thread.is_finished() && std::time::Instant::now() < deadline {
            let _ = thread.kill(kick_signal());
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            log::warn!("a vCPU thread did not stop in time");
        }
    }
}
