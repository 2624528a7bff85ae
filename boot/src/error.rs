//! The boot crate's errors. Messages name the file or table and what to do about it.

use std::path::PathBuf;

/// What went wrong while preparing the guest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The kernel image is in a format iovmm does not know.
    #[error("{}: not an ELF vmlinux or a bzImage", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A bzImage whose header or payload is inconsistent.
    #[error("{}: bad bzImage: {reason}", path.display())]
    BadBzImage {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Host-side decompression of a bzImage payload failed.
    #[error("{format} payload: {reason}")]
    Decompress {
        /// The compression format.
        format: &'static str,
        /// What failed.
        reason: String,
    },
    /// An ELF image that linux-loader refused or that does not fit the guest.
    #[error("{}: {reason}", path.display())]
    BadElf {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The initial ramdisk does not fit in guest memory.
    #[error("{}: the initrd ({size} bytes) does not fit below {limit:#x} above the kernel; give the guest more --memory", path.display())]
    InitrdTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The highest address it may reach.
        limit: u64,
    },
    /// The kernel command line is too long.
    #[error("the kernel command line is {len} bytes; at most {max} fit")]
    CmdlineTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The kernel command line has a byte Linux cannot take (NUL).
    #[error("the kernel command line contains a NUL byte")]
    CmdlineNul,
    /// Writing to guest memory failed (an address outside RAM).
    #[error("writing {what} to guest memory at {addr:#x} failed")]
    GuestMemory {
        /// What was being written.
        what: &'static str,
        /// Where.
        addr: u64,
    },
    /// The ACPI tables do not fit in their window.
    #[error("the ACPI tables need {need} bytes but only {room} fit below {end:#x}")]
    AcpiTooLarge {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        room: usize,
        /// End of the window.
        end: u64,
    },
    /// A KVM vCPU ioctl failed.
    #[error("{what}: {source}")]
    Kvm {
        /// Which call.
        what: &'static str,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// The boot MSR list does not fit KVM's array.
    #[error("{0} boot MSRs do not fit in a KVM MSR list")]
    MsrList(usize),
    /// The requested entry point is not available in this kernel.
    #[error("{}: {reason}", path.display())]
    Entry {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
}

/// Shorthand for KVM errors.
pub(crate) fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
    move |source| Error::Kvm { what, source }
}
