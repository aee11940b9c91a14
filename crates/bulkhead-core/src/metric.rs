//! The similarity a collection is searched by. Fixed at collection creation, because vectors
//! stored for cosine are normalised on the way in and can't be reinterpreted later.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

/// How two vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Cosine similarity; score in `[-1, 1]`, higher is closer.
    Cosine,
    /// Inner product; higher is closer.
    Dot,
    /// Euclidean distance; score is the distance, lower is closer.
    L2,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::Cosine, Metric::Dot, Metric::L2];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::L2 => "l2",
        }
    }

    /// Whether a larger score means a closer match (true for cosine and dot, false for l2).
    pub fn higher_is_closer(self) -> bool {
        !matches!(self, Metric::L2)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| CoreError::UnknownMetric(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_names_only() {
        for m in Metric::ALL {
            assert_eq!(m.as_str().parse::<Metric>().unwrap(), m);
        }
        assert!("Cosine".parse::<Metric>().is_err());
        assert!("euclid".parse::<Metric>().is_err());
        assert!("".parse::<Metric>().is_err());
    }
}
