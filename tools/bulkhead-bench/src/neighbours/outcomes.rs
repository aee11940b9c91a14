//! What a call came to, as the name it is counted under: a gRPC code (`RESOURCE_EXHAUSTED`), an
//! HTTP/2 reset or GOAWAY with its reason, or the client's own deadline. The victim's errors
//! and the attacker's results are both counted by these names, so the report can say how the
//! server defended itself (a refusal with a code) or failed to (timeouts, lost connections).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use parking_lot::Mutex;

use crate::unary::Status;

/// Counts by outcome name, shared by the tasks that make the calls.
#[derive(Debug, Clone, Default)]
pub struct Counts(Arc<Mutex<BTreeMap<String, i64>>>);

impl Counts {
    /// Adds `n` (possibly negative, for a state a stream leaves) to `name`.
    pub fn add(&self, name: impl Into<String>, n: i64) {
        *self.0.lock().entry(name.into()).or_default() += n;
    }

    /// Counts `result` as `OK` or its failure, under `kind` if not empty (`"upsert OK"`).
    pub fn record<T>(&self, kind: &str, result: &Result<T>) {
        let outcome = match result {
            Ok(_) => "OK".to_owned(),
            Err(e) => classify(e),
        };
        self.add(
            match kind {
                "" => outcome,
                kind => format!("{kind} {outcome}"),
            },
            1,
        );
    }

    /// The counts so far, without the names that came back to zero.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), *n as u64))
            .collect()
    }
}

/// The client gave up waiting: the call had no answer within its deadline.
#[derive(Debug)]
pub struct TimedOut(Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer within {:?}", self.0)
    }
}

impl std::error::Error for TimedOut {}

/// `call`, failing with [`TimedOut`] if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, call: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| Err(TimedOut(limit).into()))
}

/// The name a failed call is counted under.
pub fn classify(e: &anyhow::Error) -> String {
    for cause in e.chain() {
        if let Some(status) = cause.downcast_ref::<Status>() {
            return code_name(status.code);
        }
        if cause.is::<TimedOut>() {
            return "CLIENT_TIMEOUT".to_owned();
        }
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            return match h2.reason() {
                Some(reason) if h2.is_go_away() => format!("GOAWAY {reason:?}"),
                Some(reason) => format!("RST_STREAM {reason:?}"),
                None if h2.is_io() => "CONNECTION_LOST".to_owned(),
                None => format!("HTTP/2 {h2}"),
            };
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return format!("IO {:?}", io.kind());
        }
    }
    // Unforeseen: keep the start of the message, short enough for a table cell.
    e.to_string().chars().take(48).collect()
}

/// The canonical name of a gRPC code, as servers log it and the audit trail records it.
pub fn code_name(code: tonic::Code) -> String {
    let mut name = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_take_their_canonical_names() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(
            code_name(tonic::Code::ResourceExhausted),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(
            code_name(tonic::Code::DeadlineExceeded),
            "DEADLINE_EXCEEDED"
        );
    }

    #[test]
    fn failures_are_named_by_their_cause_through_context() {
        let refused = anyhow::Error::from(Status {
            code: tonic::Code::ResourceExhausted,
            message: "slow down".into(),
        })
        .context("calling Query");
        assert_eq!(classify(&refused), "RESOURCE_EXHAUSTED");
        let reset = anyhow::Error::from(h2::Error::from(h2::Reason::REFUSED_STREAM));
        assert_eq!(classify(&reset), "RST_STREAM REFUSED_STREAM");
        let late: Result<()> = Err(TimedOut(Duration::from_secs(1)).into());
        assert_eq!(classify(&late.context("x").unwrap_err()), "CLIENT_TIMEOUT");
    }

    #[test]
    fn counts_keep_only_what_is_left_above_zero() {
        let c = Counts::default();
        c.record::<()>("upsert", &Ok(()));
        c.add("held", 2);
        c.add("held", -2);
        let snapshot = c.snapshot();
        assert_eq!(snapshot.get("upsert OK"), Some(&1));
        assert!(!snapshot.contains_key("held"));
    }

    #[tokio::test]
    async fn a_late_call_times_out() {
        let r = within(Duration::from_millis(1), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            anyhow::Ok(())
        })
        .await;
        assert_eq!(classify(&r.unwrap_err()), "CLIENT_TIMEOUT");
    }
}
