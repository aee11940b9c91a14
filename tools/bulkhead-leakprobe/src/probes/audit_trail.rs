//! Refused attempts must leave a trace where the attacker's owner can see it: in the audit
//! trail of the key's own tenant, under the key's id, and not in the target's trail (which
//! would tell B about A, and means the request got as far as B).

use super::settle;
use crate::fixture::Fixture;
use crate::raw::Rpc;
use crate::report::{ProbeResult, Problems};

pub async fn run(f: &Fixture) -> ProbeResult {
    let tried: Vec<Rpc> = Rpc::TENANT_SCOPED
        .iter()
        .chain(&Rpc::SESSION)
        .chain(&Rpc::ADMIN)
        .copied()
        .collect();
    check(f, "denials-audited", &tried).await
}

/// Each of `tried`, sent by A's TENANT_ADMIN key at B, is in A's trail as PERMISSION_DENIED
/// under the key's id (on B's path, but for the admin RPCs), and no call of another probe
/// tenant's key is in B's trail.
pub(super) async fn check(f: &Fixture, name: &str, tried: &[Rpc]) -> ProbeResult {
    let outcome = async {
        let (a, b) = (&f.tenants[0], &f.tenants[1]);
        let attacker = a.admin.key_id();
        let own_trail = f
            .with_key(a, &a.read)?
            .audit_events(None, 1_000_000)
            .await?;
        let mut problems = Problems::default();
        // B's trail first: an event of A's key there means the call reached B.
        let target_trail = f
            .operator_view(&b.id)?
            .audit_events(None, 1_000_000)
            .await?;
        for e in &target_trail {
            if let Some(owner) = f.key_owner(&e.principal).filter(|o| *o != b.id) {
                problems.push(format!(
                    "{}'s trail has {} {} by {owner}'s key {}",
                    b.id, e.outcome, e.method, e.principal
                ));
            }
        }
        let b_path = format!("tenants/{}", b.id);
        for rpc in tried {
            let recorded = own_trail.iter().any(|e| {
                e.method == rpc.method()
                    && e.principal == attacker
                    && e.outcome == "PERMISSION_DENIED"
                    && (Rpc::ADMIN.contains(rpc)
                        || e.resource == b_path
                        || e.resource.starts_with(&format!("{b_path}/")))
            });
            if !recorded {
                problems.push(format!(
                    "no PERMISSION_DENIED {} by {attacker} in {}'s trail",
                    rpc.method(),
                    a.id
                ));
            }
        }
        Ok(problems.verdict(
            name,
            format!(
                "all {} refused RPCs by A's key are in A's trail as PERMISSION_DENIED; none in B's",
                tried.len()
            ),
        ))
    };
    settle(name, outcome.await)
}
