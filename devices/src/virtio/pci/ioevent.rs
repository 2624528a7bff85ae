//! Queue notifications that bypass the vCPU exit path: the VMM registers each queue's
//! notification address as a KVM ioeventfd, and the transport keeps those registrations where
//! the guest currently decodes its BAR.

use std::fmt::Debug;
use std::io;

use vmm_sys_util::eventfd::EventFd;

/// Registers MMIO addresses whose guest writes signal an eventfd without a vCPU exit (the VMM
/// implements it with `KVM_IOEVENTFD`, no datamatch).
pub trait IoEventRegistry: Send + Sync + Debug {
    /// A guest write of `len` bytes at `addr` now signals `fd`.
    fn register(&self, addr: u64, len: u32, fd: &EventFd) -> io::Result<()>;
    /// Undoes [`IoEventRegistry::register`] for the same `addr`, `len` and `fd`.
    fn unregister(&self, addr: u64, len: u32, fd: &EventFd) -> io::Result<()>;
}

/// Notifications are 16-bit writes of the queue index (virtio 1.2 §4.1.5.2); writes of other
/// sizes miss the ioeventfd and reach the transport, which signals the eventfd itself.
pub const NOTIFY_WRITE_LEN: u32 = 2;
