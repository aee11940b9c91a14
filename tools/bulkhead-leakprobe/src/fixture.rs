//! The probe's own tenants. They live under a fresh random prefix, so a run never touches an
//! operator's tenants and two runs never collide, and they are removed by that prefix, which
//! also catches any tenant a leaking server let a probe create.

use bulkhead_client::{AdminClient, Client, CreatedKey, Role, TenantClient, TenantOptions};

use crate::canary::{self, Canary, CanaryBook};
use crate::raw::{Raw, Target};
use crate::remote::Remote;
use crate::report::{ProbeResult, progress};

/// A probe tenant with a key of every role and its planted canaries.
#[derive(Debug)]
pub struct ProbeTenant {
    pub id: String,
    /// Position among the probe tenants, which picks its canary vectors.
    pub index: usize,
    pub canary: Canary,
    pub read: CreatedKey,
    pub write: CreatedKey,
    pub admin: CreatedKey,
}

impl ProbeTenant {
    pub fn keys(&self) -> [&CreatedKey; 3] {
        [&self.read, &self.write, &self.admin]
    }
}

/// Everything the probes share: connections, the tenants and whose canary is whose.
#[derive(Debug)]
pub struct Fixture {
    pub remote: Remote,
    pub client: Client,
    pub admin: AdminClient,
    admin_token: String,
    pub raw: Raw,
    pub top_k: u32,
    prefix: String,
    pub tenants: Vec<ProbeTenant>,
    pub book: CanaryBook,
}

/// `probe-<8 random hex>-`: every tenant of one run starts with it.
pub fn run_prefix() -> String {
    format!("probe-{}-", canary::random_hex(4))
}

impl Fixture {
    /// Creates `count` tenants under `prefix`, each with a READ, a WRITE and a TENANT_ADMIN
    /// key and its canaries.
    pub async fn set_up(
        remote: &Remote,
        client: Client,
        admin_token: &str,
        top_k: u32,
        prefix: &str,
        count: usize,
    ) -> anyhow::Result<Self> {
        let admin = client.admin(admin_token)?;
        let raw = Raw::connect(remote, top_k).await?;
        let mut tenants = Vec::with_capacity(count);
        let mut book = CanaryBook::default();
        progress(format!("creating {count} tenants {prefix}0..{}", count - 1));
        for index in 0..count {
            let id = format!("{prefix}{index}");
            admin.create_tenant(&id, &TenantOptions::default()).await?;
            let key = |role| admin.create_key(&id, role, None, "leakprobe");
            let tenant = ProbeTenant {
                canary: Canary::new(&id),
                read: key(Role::Read).await?,
                write: key(Role::Write).await?,
                admin: key(Role::TenantAdmin).await?,
                index,
                id: id.clone(),
            };
            canary::plant(
                &client.tenant(&id, &tenant.write.secret)?,
                &tenant.canary,
                index,
            )
            .await?;
            book.register(&tenant.canary);
            tenants.push(tenant);
        }
        Ok(Self {
            remote: remote.clone(),
            client,
            admin,
            admin_token: admin_token.to_owned(),
            raw,
            top_k,
            prefix: prefix.to_owned(),
            tenants,
            book,
        })
    }

    /// A handle on `tenant` with `key`.
    pub fn with_key(&self, tenant: &ProbeTenant, key: &CreatedKey) -> anyhow::Result<TenantClient> {
        Ok(self.client.tenant(&tenant.id, &key.secret)?)
    }

    /// A handle on `tenant` with the admin token: the operator's view, used to tell whether
    /// anything changed.
    pub fn operator_view(&self, tenant: &str) -> anyhow::Result<TenantClient> {
        Ok(self.client.tenant(tenant, &self.admin_token)?)
    }

    /// A tenant id under this run's prefix that is never created.
    pub fn absent_tenant(&self) -> String {
        format!("{}absent", self.prefix)
    }

    /// The tenant id a refused `CreateTenant` asks for; cleaned up with the rest if it
    /// was created after all.
    pub fn intruder_tenant(&self) -> String {
        format!("{}intruder", self.prefix)
    }

    /// `victim`'s genuine names as `attacker` would aim at them: its canary collection, its
    /// READ key, and the attacker's canary as the text of an intruding write.
    pub fn target(&self, victim: &str, victim_key: &str, attacker: &ProbeTenant) -> Target {
        Target {
            tenant_id: self.intruder_tenant(),
            ..Target::tenant(victim, victim_key, &attacker.canary.text("intruder"))
        }
    }

    /// The probe tenant whose key has `key_id`.
    pub fn key_owner(&self, key_id: &str) -> Option<&str> {
        self.tenants
            .iter()
            .find(|t| t.keys().iter().any(|k| k.key_id() == key_id))
            .map(|t| t.id.as_str())
    }
}

/// Deletes every tenant under `prefix`; reports what could not be removed.
pub async fn remove_tenants(admin: &AdminClient, prefix: &str) -> ProbeResult {
    const NAME: &str = "cleanup";
    let tenants = match admin.tenants().await {
        Ok(t) => t,
        Err(e) => return ProbeResult::fail(NAME, format!("listing tenants: {e}")),
    };
    let ours: Vec<String> = tenants
        .iter()
        .filter_map(|t| t.name.strip_prefix("tenants/"))
        .filter(|id| id.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    progress(format!("removing {} probe tenants", ours.len()));
    let mut left = Vec::new();
    for id in &ours {
        if let Err(e) = admin.delete_tenant(id).await {
            left.push(format!("{id}: {e}"));
        }
    }
    if left.is_empty() {
        ProbeResult::pass(NAME, format!("removed {} tenants {prefix}*", ours.len()))
    } else {
        ProbeResult::fail(NAME, format!("could not remove {}", left.join("; ")))
    }
}
