//! End-user tokens: JWTs a tenant's backend signs for its own users with an Ed25519 key whose
//! public half the tenant registered (`KeyService.AddVerificationKey`). The token's `kid` is
//! the key's name, `tenants/{tenant}/verificationKeys/{key}`, so the server knows which one
//! tenant's key must verify it before reading a claim, and it verifies with that key alone:
//!
//! - the algorithm is the key's (EdDSA); a token announcing another (`none`, HS256 keyed with
//!   the public key, RS256) is refused before any signature check;
//! - the `tenant` claim must be the key's tenant: a tenant's key never vouches for another;
//! - `exp`, `iat`, `aud` (`bulkhead`) and `sub` are required, `nbf` is honoured, and the
//!   lifetime `exp` - `iat` is at most the key's `max_token_lifetime_seconds`;
//! - a revoked key, or one of a deleted tenant, verifies nothing;
//! - the role is READ or WRITE: an end user never administers the tenant.
//!
//! Every refusal is UNAUTHENTICATED; what the token may reach once verified is `end_user`'s.

use bulkhead_core::{CollectionId, Role, VerificationKeyName};
use bulkhead_engine::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tonic::Status;

use crate::end_user::EndUser;
use crate::principal::TenantCaller;

/// The audience every end-user token must name.
pub const AUDIENCE: &str = "bulkhead";
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 5;
/// Longest `sub`, group or session id, in characters.
const MAX_CLAIM_CHARS: usize = 256;
/// Most groups, and most collections, one token may carry.
const MAX_GROUPS: usize = 64;
const MAX_COLLECTIONS: usize = 256;

#[derive(Debug, Deserialize)]
struct Claims {
    tenant: String,
    sub: String,
    role: String,
    iat: u64,
    exp: u64,
    collections: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    session: Option<String>,
}

fn refused(why: impl std::fmt::Display) -> Status {
    Status::unauthenticated(format!("invalid end-user token: {why}"))
}

/// The verification key a token names in its `kid`, when it names one: the token is then an
/// end-user token and must verify as one. `None` for other tokens (an identity provider's).
pub fn signing_key(token: &str) -> Result<Option<VerificationKeyName>, Status> {
    let header = jsonwebtoken::decode_header(token).map_err(refused)?;
    Ok(header.kid.and_then(|kid| kid.parse().ok()))
}

/// A claim that names something (a user, a group, a session): non-empty, bounded, printable.
fn name_claim(what: &str, value: String) -> Result<String, Status> {
    if value.is_empty()
        || value.chars().count() > MAX_CLAIM_CHARS
        || value.chars().any(char::is_control)
    {
        return Err(refused(format!(
            "{what} must be 1 to {MAX_CLAIM_CHARS} printable characters"
        )));
    }
    Ok(value)
}

/// The tenant caller a valid token signed by `key` speaks for.
pub fn verify(
    token: &str,
    key: &VerificationKeyName,
    engine: &Engine,
    now_ms: u64,
) -> Result<TenantCaller, Status> {
    let header = jsonwebtoken::decode_header(token).map_err(refused)?;
    if header.alg != Algorithm::EdDSA {
        return Err(refused(format!(
            "signed with {:?}; tenant keys are Ed25519 (EdDSA)",
            header.alg
        )));
    }
    let stored = engine
        .verification_key(&key.tenant, &key.key)
        .ok_or_else(|| refused(format!("no verification key {key}")))?;
    if stored.revoked {
        return Err(refused(format!("verification key {key} is revoked")));
    }
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_ed_der(&stored.ed25519_public_key),
        &validation,
    )
    .map_err(refused)?
    .claims;
    if claims.tenant != key.tenant.as_str() {
        return Err(refused("its tenant is not the tenant whose key signed it"));
    }
    if claims.iat.saturating_mul(1000) > now_ms + LEEWAY_SECS * 1000 {
        return Err(refused("issued in the future"));
    }
    let lifetime = claims.exp.saturating_sub(claims.iat);
    if lifetime > stored.max_token_lifetime_secs {
        return Err(refused(format!(
            "it lives {lifetime} s, its key allows at most {} s",
            stored.max_token_lifetime_secs
        )));
    }
    let role = match claims.role.as_str() {
        "READ" => Role::Read,
        "WRITE" => Role::Write,
        _ => return Err(refused("role must be READ or WRITE")),
    };
    let subject = name_claim("sub", claims.sub)?;
    if claims.groups.len() > MAX_GROUPS || claims.collections.len() > MAX_COLLECTIONS {
        return Err(refused(format!(
            "at most {MAX_GROUPS} groups and {MAX_COLLECTIONS} collections"
        )));
    }
    let groups = claims
        .groups
        .into_iter()
        .map(|g| name_claim("a group", g))
        .collect::<Result<_, _>>()?;
    let session = claims
        .session
        .map(|s| name_claim("session", s))
        .transpose()?;
    let collections = claims
        .collections
        .into_iter()
        .map(|c| CollectionId::new(c).map_err(|e| refused(format!("collections: {e}"))))
        .collect::<Result<_, _>>()?;
    Ok(TenantCaller {
        tenant: key.tenant.clone(),
        role,
        name: format!("user:{}", subject.chars().take(64).collect::<String>()),
        end_user: Some(EndUser {
            subject,
            groups,
            session,
            collections,
        }),
    })
}
