//! One error type for the whole crate so the engine can map every index failure to a single
//! API error without matching on module-specific types.

/// Why an index operation was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum IndexError {
    /// Caller's fault: the vector's length differs from the index dimension.
    #[error("vector has dimension {got}, index expects {expected}")]
    DimensionMismatch { expected: usize, got: usize },

    /// Caller's fault: the label is already live in the index (remove it first to replace it).
    #[error("label {0} is already present in the index")]
    DuplicateLabel(u32),

    /// Caller's fault: a cosine index cannot store or query a vector with zero norm.
    #[error("zero vector cannot be used with the cosine metric")]
    ZeroVector,

    /// Caller's fault: the vector contains NaN or an infinity.
    #[error("vector contains a non-finite value at position {0}")]
    NonFinite(usize),

    /// Caller's fault: index parameters (or the dimension) are outside the supported bounds.
    #[error("invalid index parameter: {0}")]
    InvalidParams(String),

    /// Ours: the index holds as many vectors as its internal slot numbering allows (`u32::MAX`).
    #[error("index is full ({0} slots)")]
    Full(usize),

    /// An index image could not be written or read back: an I/O failure, or bytes that are
    /// not an image of this index (truncated, another format version, other settings).
    #[error("index image: {0}")]
    Image(String),
}

/// Result alias used throughout the crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
