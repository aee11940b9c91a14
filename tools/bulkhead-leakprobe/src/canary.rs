//! Canaries make a leak visible from the outside. Every probe tenant gets a random token that
//! only its own records carry, so any text read back names the tenant it came from, even
//! when the server's answer looks plausible. Every tenant holds the same record ids with
//! identical or nearly identical vectors: a search or lookup that crossed tenants would find
//! another tenant's canary as readily as its own.

use std::collections::HashMap;

use std::time::Duration;

use bulkhead_client::{
    CollectionSpec, Memory, MemoryKind, Metric, Record, SessionOptions, TenantClient,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The collection holding the canaries, in every probe tenant.
pub const COLLECTION: &str = "canaries";
/// The semantic cache every probe tenant creates for the cache probes, and the user scope of
/// one of its two entries.
pub const CACHE: &str = "probe-cache";
pub const CACHE_SCOPE: &str = "user-1";
/// The session every probe tenant holds, with the canary records as its items.
pub const SESSION: &str = "probe-session";
pub const DIMENSION: usize = 16;
/// The canary record ids, the same in every tenant.
pub const RECORD_IDS: [&str; 16] = [
    "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13", "c14",
    "c15",
];
/// Canary records per tenant.
pub const RECORDS: usize = RECORD_IDS.len();
/// Records below this index have the same vector in every tenant; the others differ by a
/// nudge small enough to keep them each other's nearest neighbours.
const IDENTICAL: usize = 8;
const PREFIX: &str = "canary:";

/// One tenant's secret token and the records that carry it.
#[derive(Debug, Clone)]
pub struct Canary {
    tenant: String,
    token: String,
}

impl Canary {
    pub fn new(tenant: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            token: random_hex(16),
        }
    }

    /// The text of record `id`: the tenant, its token and the id, so a read-back names all
    /// three.
    pub fn text(&self, id: &str) -> String {
        format!("{PREFIX}{}:{}:{id}", self.tenant, self.token)
    }

    /// The canary records of the tenant at `tenant_index` among the probe tenants.
    pub fn records(&self, tenant_index: usize) -> Vec<Record> {
        RECORD_IDS
            .iter()
            .enumerate()
            .map(|(i, id)| Record::new(*id, vector(i, tenant_index)).with_text(self.text(id)))
            .collect()
    }

    /// The canary records as a session's items: the same ids, vectors and texts.
    pub fn memories(&self, tenant_index: usize) -> Vec<Memory> {
        self.records(tenant_index)
            .into_iter()
            .map(|r| {
                Memory::new(MemoryKind::Turn, r.text.unwrap_or_default())
                    .with_id(r.id)
                    .with_vector(r.vector)
            })
            .collect()
    }
}

/// The vector of canary record `record` in the tenant at `tenant_index`: a pseudo-random unit
/// vector shared by all tenants, nudged per tenant for the upper half of the records.
pub fn vector(record: usize, tenant_index: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(record as u64);
    let mut v: Vec<f32> = (0..DIMENSION)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    if record >= IDENTICAL {
        v[0] += 1e-3 * (tenant_index as f32 + 1.0);
    }
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / norm).collect()
}

/// Creates session `session` in the tenant `client` is fixed to and fills it with `canary`'s
/// items; it lives an hour, longer than any probe run.
pub async fn plant_session(
    client: &TenantClient,
    session: &str,
    canary: &Canary,
    tenant_index: usize,
) -> anyhow::Result<()> {
    let hour = Duration::from_secs(3600);
    let options = SessionOptions::new(DIMENSION as u32, hour, hour);
    client.create_session(session, &options).await?;
    client
        .session(session)?
        .append(canary.memories(tenant_index))
        .await?;
    Ok(())
}

/// Creates the canary collection and the canary session in the tenant `client` is fixed to and
/// fills them.
pub async fn plant(
    client: &TenantClient,
    canary: &Canary,
    tenant_index: usize,
) -> anyhow::Result<()> {
    client
        .create_collection(
            COLLECTION,
            &CollectionSpec::new(DIMENSION as u32, Metric::Cosine),
        )
        .await?;
    client
        .upsert(COLLECTION, &canary.records(tenant_index))
        .await?;
    plant_session(client, SESSION, canary, tenant_index).await
}

/// Which tenant every planted token belongs to.
#[derive(Debug, Default, Clone)]
pub struct CanaryBook {
    owners: HashMap<String, String>,
}

impl CanaryBook {
    pub fn register(&mut self, canary: &Canary) {
        self.owners
            .insert(canary.token.clone(), canary.tenant.clone());
    }

    /// Whose canary `text` carries, if anybody's.
    pub fn owner(&self, text: &str) -> Option<&str> {
        let token = text
            .split_once(PREFIX)
            .and_then(|(_, rest)| rest.split(':').nth(1))?;
        self.owners.get(token).map(String::as_str)
    }

    /// What is wrong with tenant `asker` reading record `id` with `text`, if anything: a
    /// token of another tenant, a token nobody planted, or no token at all.
    pub fn misattribution(&self, asker: &str, id: &str, text: Option<&str>) -> Option<String> {
        let Some(text) = text else {
            return Some(format!("{asker} got record {id:?} without its canary text"));
        };
        let token = text
            .split_once(PREFIX)
            .and_then(|(_, rest)| rest.split(':').nth(1));
        match token.map(|t| self.owners.get(t)) {
            Some(Some(owner)) if owner == asker => None,
            Some(Some(owner)) => Some(format!(
                "{asker} got record {id:?} holding the canary of {owner}"
            )),
            Some(None) => Some(format!(
                "{asker} got record {id:?} with a canary token nobody planted: {text:?}"
            )),
            None => Some(format!(
                "{asker} got record {id:?} without a canary token: {text:?}"
            )),
        }
    }
}

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(canaries: &[&Canary]) -> CanaryBook {
        let mut b = CanaryBook::default();
        for c in canaries {
            b.register(c);
        }
        b
    }

    #[test]
    fn a_tenant_reading_its_own_canary_is_fine_and_another_tenants_is_named() {
        let a = Canary::new("probe-1-0");
        let b = Canary::new("probe-1-1");
        let book = book(&[&a, &b]);
        assert_eq!(
            book.misattribution("probe-1-0", "c3", Some(&a.text("c3"))),
            None
        );
        let leak = book
            .misattribution("probe-1-0", "c3", Some(&b.text("c3")))
            .unwrap();
        assert!(leak.contains("canary of probe-1-1"), "{leak}");
    }

    #[test]
    fn unknown_tokens_missing_tokens_and_missing_text_are_all_reported() {
        let a = Canary::new("probe-1-0");
        let book = book(&[&a]);
        let stranger = Canary::new("probe-1-0");
        assert!(
            book.misattribution("probe-1-0", "c0", Some(&stranger.text("c0")))
                .unwrap()
                .contains("nobody planted")
        );
        assert!(
            book.misattribution("probe-1-0", "c0", Some("hello"))
                .unwrap()
                .contains("without a canary token")
        );
        assert!(
            book.misattribution("probe-1-0", "c0", None)
                .unwrap()
                .contains("without its canary text")
        );
    }

    #[test]
    fn a_tenant_name_in_the_text_does_not_count_only_the_token_does() {
        let a = Canary::new("probe-1-0");
        let b = Canary::new("probe-1-1");
        let book = book(&[&a, &b]);
        let forged = b.text("c0").replace("probe-1-1", "probe-1-0");
        assert!(
            book.misattribution("probe-1-0", "c0", Some(&forged))
                .is_some()
        );
    }

    #[test]
    fn vectors_are_unit_length_and_shared_or_nearly_shared_between_tenants() {
        for r in 0..RECORDS {
            let v0 = vector(r, 0);
            let v5 = vector(r, 5);
            assert!((v0.iter().map(|a| a * a).sum::<f32>() - 1.0).abs() < 1e-5);
            let cos: f32 = v0.iter().zip(&v5).map(|(a, b)| a * b).sum();
            if r < IDENTICAL {
                assert_eq!(v0, v5);
            } else {
                assert_ne!(v0, v5);
                assert!(cos > 0.999, "record {r}: {cos}");
            }
        }
        assert_ne!(vector(0, 0), vector(1, 0));
    }

    #[test]
    fn every_tenant_gets_the_same_ids_and_its_own_token() {
        let a = Canary::new("probe-1-0");
        let b = Canary::new("probe-1-1");
        let ids = |c: &Canary| c.records(0).into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(ids(&a).len(), RECORDS);
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 32);
    }
}
