use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid vecs data: {0}")]
    Vecs(String),
    #[error("line {line}: {message}")]
    Document { line: usize, message: String },
    /// Bad Arrow input; `column` names the column at fault when there is one.
    #[error("{}{message}", column.as_ref().map(|c| format!("column {c}: ")).unwrap_or_default())]
    Arrow {
        column: Option<String>,
        message: String,
    },
    #[error("{path}: {source}")]
    InFile {
        path: PathBuf,
        source: Box<FormatError>,
    },
}

impl FormatError {
    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        FormatError::InFile {
            path: path.to_owned(),
            source: Box::new(self),
        }
    }
}

pub type Result<T, E = FormatError> = std::result::Result<T, E>;
