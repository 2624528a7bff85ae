//! The crate's error type: configuration mistakes made by the VMM, never guest behaviour (the
//! guest's mistakes become recorded faults).

/// Why an IOMMU model could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The address width is not one VT-d second-level tables can express here.
    #[error("Unsupported VT-d address width {0} (use 39 or 48)")]
    AddressWidth(u8),
    /// The number of fault recording registers is zero or does not fit the register page.
    #[error("Unsupported number of VT-d fault records {requested} (1 to {max})")]
    FaultRecords {
        /// What was asked for.
        requested: u8,
        /// The most that fit.
        max: u8,
    },
}
