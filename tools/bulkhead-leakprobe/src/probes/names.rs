//! Tenant names that look like a real one, or that a lenient parser would normalise into
//! one: case variants, unicode confusables, percent-encoding, `..`, slashes, whitespace, NUL,
//! overlong and empty ids. Sent with tenant A's valid key, each must be refused before it
//! reaches any tenant, whether it resembles A or B.

use tonic::Code;

use super::{settle, unexpected};
use crate::canary::COLLECTION;
use crate::fixture::Fixture;
use crate::raw::{Auth, Rpc, Target};
use crate::report::{ProbeResult, Problems};

/// The RPCs each lookalike is tried on: every read, and a write that would plant A's canary
/// wherever the name led.
const RPCS: [Rpc; 7] = [
    Rpc::GetCollection,
    Rpc::ListCollections,
    Rpc::Get,
    Rpc::Query,
    Rpc::ListAuditEvents,
    Rpc::ListApiKeys,
    Rpc::Upsert,
];

/// The only answers a lookalike may get.
const REFUSED: [Code; 2] = [Code::InvalidArgument, Code::PermissionDenied];

/// A malformed name, and what it tries.
#[derive(Debug)]
struct Lookalike {
    label: &'static str,
    parent: String,
    collection: String,
}

impl Lookalike {
    /// `tenants/{segment}` and its canary collection, with `segment` verbatim.
    fn segment(label: &'static str, segment: String) -> Self {
        Self {
            label,
            parent: format!("tenants/{segment}"),
            collection: format!("tenants/{segment}/collections/{COLLECTION}"),
        }
    }

    /// The name `rpc` carries: the parent for listings, the collection otherwise.
    fn name_for(&self, rpc: Rpc) -> &str {
        match rpc {
            Rpc::ListCollections | Rpc::ListAuditEvents | Rpc::ListApiKeys => &self.parent,
            _ => &self.collection,
        }
    }
}

/// Lookalikes of tenants `a` and `b`, which are probe ids (`probe-<hex>-<n>`).
fn lookalikes(a: &str, b: &str) -> Vec<Lookalike> {
    let seg = Lookalike::segment;
    let mut capitalised = a.to_owned();
    capitalised[..1].make_ascii_uppercase();
    vec![
        seg("upper-case A", a.to_uppercase()),
        seg("upper-case B", b.to_uppercase()),
        seg("capitalised A", capitalised),
        seg("Cyrillic о in A", a.replacen('o', "\u{43e}", 1)),
        seg("Cyrillic е in B", b.replacen('e', "\u{435}", 1)),
        seg("unicode hyphen in B", b.replacen('-', "\u{2010}", 1)),
        seg("fullwidth digit in B", fullwidth_last_digit(b)),
        seg("percent-encoded hyphen in A", a.replacen('-', "%2D", 1)),
        seg("percent-encoded hyphen in B", b.replacen('-', "%2D", 1)),
        seg("percent-encoded ../ to B", format!("{a}%2F..%2F{b}")),
        seg(".. from A to B", format!("{a}/../{b}")),
        seg(".. from B to A", format!("{b}/../{a}")),
        seg("./ before A", format!("./{a}")),
        seg("bare ..", "..".to_owned()),
        seg("slash inside the tenant", format!("{a}/{b}")),
        seg("leading space", format!(" {a}")),
        seg("trailing space", format!("{a} ")),
        seg("trailing tab", format!("{b}\t")),
        seg("no-break space", format!("{a}\u{a0}")),
        seg("NUL after A", format!("{a}\0")),
        seg("NUL between A and B", format!("{a}\0{b}")),
        seg(
            "64-char id from A",
            format!("{a}{}", "0".repeat(64 - a.len())),
        ),
        seg(
            "64-char id from B",
            format!("{b}{}", "0".repeat(64 - b.len())),
        ),
        seg("very long id", a.repeat(40)),
        seg("empty tenant", String::new()),
        Lookalike {
            label: "trailing slash",
            parent: format!("tenants/{a}/"),
            collection: format!("tenants/{a}/collections/{COLLECTION}/"),
        },
        Lookalike {
            label: "whitespace around the name",
            parent: format!(" tenants/{a}\n"),
            collection: format!(" tenants/{a}/collections/{COLLECTION}\n"),
        },
        Lookalike {
            label: "no tenants/ prefix",
            parent: a.to_owned(),
            collection: format!("{a}/collections/{COLLECTION}"),
        },
        Lookalike {
            label: "empty name",
            parent: String::new(),
            collection: String::new(),
        },
    ]
}

/// `id` with its last character, a digit, in its fullwidth form (`0` → `０`).
fn fullwidth_last_digit(id: &str) -> String {
    let (head, last) = id.split_at(id.len() - 1);
    let digit = last
        .chars()
        .next()
        .and_then(|c| c.to_digit(10))
        .unwrap_or(0);
    let fullwidth = char::from_u32(0xFF10 + digit).unwrap_or('\u{FF10}');
    format!("{head}{fullwidth}")
}

pub async fn run(f: &Fixture) -> ProbeResult {
    const NAME: &str = "lookalike-names";
    let outcome = async {
        let (a, b) = (&f.tenants[0], &f.tenants[1]);
        let auth = Auth::bearer(&a.admin.secret)?;
        let variants = lookalikes(&a.id, &b.id);
        let mut problems = Problems::default();
        for v in &variants {
            let target = Target {
                parent: v.parent.clone(),
                collection: v.collection.clone(),
                ..f.target(&b.id, b.read.key_id(), a)
            };
            for rpc in RPCS {
                let outcome = f.raw.send(rpc, &auth, &target).await;
                if let Some(got) = unexpected(&outcome, &REFUSED, &a.id, &f.book) {
                    let name = v.name_for(rpc);
                    problems.push(format!("{rpc:?} on {name:?} ({}): {got}", v.label));
                }
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "{} lookalikes × {} RPCs with A's key: all INVALID_ARGUMENT or PERMISSION_DENIED",
                variants.len(),
                RPCS.len()
            ),
        ))
    };
    settle(NAME, outcome.await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_lookalike_is_a_genuine_name_and_labels_are_unique() {
        let (a, b) = ("probe-0a1b2c3d-0", "probe-0a1b2c3d-1");
        let all = lookalikes(a, b);
        let genuine = [a, b].map(|t| {
            (
                format!("tenants/{t}"),
                format!("tenants/{t}/collections/{COLLECTION}"),
            )
        });
        for l in &all {
            for (parent, collection) in &genuine {
                assert_ne!(&l.parent, parent, "{}", l.label);
                assert_ne!(&l.collection, collection, "{}", l.label);
            }
        }
        let mut labels: Vec<_> = all.iter().map(|l| l.label).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), all.len());
    }

    #[test]
    fn confusables_and_long_ids_are_what_their_labels_say() {
        let (a, b) = ("probe-0a1b2c3d-0", "probe-0a1b2c3d-1");
        let all = lookalikes(a, b);
        let find = |label: &str| all.iter().find(|l| l.label == label).unwrap();
        assert_eq!(
            find("Cyrillic о in A").parent,
            "tenants/pr\u{43e}be-0a1b2c3d-0"
        );
        assert_eq!(
            find("fullwidth digit in B").parent,
            "tenants/probe-0a1b2c3d-１"
        );
        assert_eq!(
            find("64-char id from A").parent.len(),
            "tenants/".len() + 64
        );
        assert_eq!(find("upper-case B").parent, "tenants/PROBE-0A1B2C3D-1");
    }
}
