//! End-user tokens: JWTs a tenant's backend signs for its own users with an Ed25519 key whose
//! public half the tenant registered (`KeyService.AddVerificationKey`). The token's `kid` is
//! the key's name, `tenants/{tenant}/verificationKeys/{key}`, so the server knows which one
//! tenant's key must verify it before reading a claim, and it verifies with that key alone:
//!
//! - the algorithm is the key's (EdDSA); a token announcing another (`none`, HS256 keyed with
//!   the public key, RS256) is refused before any signature check;
//! - the `tenant` claim must be the key's tenant: a tenant's key never vouches for another;
//! - `exp`, `iat`, `aud` (`bulkhead`) and `sub` are required, `nbf` is honoured, and the
//!   lifetime `exp` - `iat` is at most the key's `max_token_lifetime_seconds` and the tenant's;
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
use crate::tokens::{LEEWAY_SECS, issued_in_the_future};

/// The audience every end-user token must name.
pub const AUDIENCE: &str = "bulkhead";
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

/// What an end-user token's header says of its signature: the tenant key its `kid` names, and
/// the algorithm it announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    pub key: VerificationKeyName,
    pub alg: Algorithm,
}

/// Who signed a token, when its `kid` names a tenant's verification key: the token is then an
/// end-user token and must verify as one. `None` for other tokens (an identity provider's).
pub fn signing_key(token: &str) -> Result<Option<SignedBy>, Status> {
    let header = jsonwebtoken::decode_header(token).map_err(refused)?;
    Ok(header
        .kid
        .and_then(|kid| kid.parse().ok())
        .map(|key| SignedBy {
            key,
            alg: header.alg,
        }))
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

/// The tenant caller a valid token, whose header `signing_key` read, speaks for.
pub fn verify(
    token: &str,
    signed: &SignedBy,
    engine: &Engine,
    now_ms: u64,
) -> Result<TenantCaller, Status> {
    if signed.alg != Algorithm::EdDSA {
        return Err(refused(format!(
            "signed with {:?}; tenant keys are Ed25519 (EdDSA)",
            signed.alg
        )));
    }
    let key = &signed.key;
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
    if issued_in_the_future(claims.iat, now_ms) {
        return Err(refused("issued in the future"));
    }
    let lifetime = claims.exp.saturating_sub(claims.iat);
    if lifetime > stored.max_token_lifetime_secs {
        return Err(refused(format!(
            "it lives {lifetime} s, its key and tenant allow at most {} s",
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

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::{KeyId, TenantId};
    use bulkhead_engine::{EngineConfig, TenantSettings, VerificationKeyRecord};
    use jsonwebtoken::{EncodingKey, Header};
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use serde_json::{Value, json};

    /// Now, in seconds: jsonwebtoken checks `exp` and `nbf` against the real clock, so the
    /// tests' times are taken from it too.
    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// An engine holding tenant `acme` with verification key `k1` (tokens may live 600 s), the
    /// key's PKCS#8 private half, and the key's name.
    fn setup() -> (tempfile::TempDir, Engine, Vec<u8>, VerificationKeyName) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let acme = TenantId::new("acme").unwrap();
        engine
            .create_tenant(&acme, &TenantSettings::default())
            .unwrap();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
        let handle = engine
            .tenant(&engine.authority().admin(&acme, "token test"))
            .unwrap();
        handle
            .add_verification_key(VerificationKeyRecord {
                tenant: acme.clone(),
                key_id: KeyId::new("k1").unwrap(),
                ed25519_public_key: public,
                description: String::new(),
                max_token_lifetime_secs: 600,
                created_at_ms: 0,
                revoked: false,
                incarnation: 0,
            })
            .unwrap();
        let kid = "tenants/acme/verificationKeys/k1".parse().unwrap();
        (dir, engine, pkcs8.as_ref().to_vec(), kid)
    }

    /// Valid claims issued at `now` for five minutes, with `changes` laid over them.
    fn claims(now: u64, changes: Value) -> Value {
        let mut c = json!({
            "tenant": "acme", "sub": "alice", "aud": AUDIENCE, "role": "READ",
            "collections": ["docs"], "iat": now, "exp": now + 300,
        });
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    /// What the token's header says of its signature, as authentication reads it.
    fn signed(token: &str) -> SignedBy {
        signing_key(token)
            .unwrap()
            .expect("the kid names a verification key")
    }

    fn sign(pkcs8: &[u8], kid: &VerificationKeyName, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(pkcs8)).unwrap()
    }

    /// `verify`, at `now`, of a token issued at `now` with `changes(now)` to the valid claims.
    fn verified_with(changes: impl Fn(u64) -> Value) -> Result<TenantCaller, Status> {
        let (_dir, engine, pkcs8, kid) = setup();
        let now = now();
        let token = sign(&pkcs8, &kid, &claims(now, changes(now)));
        verify(&token, &signed(&token), &engine, now * 1000)
    }

    fn verified(changes: Value) -> Result<TenantCaller, Status> {
        verified_with(|_| changes.clone())
    }

    #[test]
    fn a_valid_token_speaks_for_its_user_with_its_grant() {
        let caller = verified(json!({"groups": ["eng"], "role": "WRITE"})).unwrap();
        assert_eq!(caller.tenant.as_str(), "acme");
        assert_eq!(caller.role, Role::Write);
        assert_eq!(caller.name, "user:alice");
        let user = caller.end_user.unwrap();
        assert_eq!(user.groups, ["eng"]);
        assert_eq!(user.collections, [CollectionId::new("docs").unwrap()]);
        assert_eq!(user.session, None);
        assert_eq!(verified(json!({})).unwrap().role, Role::Read);
        let long = "a".repeat(100);
        let caller = verified(json!({"sub": long})).unwrap();
        assert_eq!(
            caller.name.len(),
            "user:".len() + 64,
            "audit names are bounded"
        );
    }

    #[test]
    fn lifetimes_and_issue_times_are_bounded_exactly() {
        verified_with(|now| json!({"exp": now + 600})).expect("the key's whole lifetime");
        assert!(verified_with(|now| json!({"exp": now + 601})).is_err());
        verified_with(|now| json!({"iat": now + LEEWAY_SECS, "exp": now + 300}))
            .expect("issued within the leeway");
        assert!(
            verified_with(|now| json!({"iat": now + LEEWAY_SECS + 1, "exp": now + 300})).is_err()
        );
    }

    #[test]
    fn claims_naming_users_groups_and_sessions_are_bounded() {
        verified(json!({"sub": "a".repeat(MAX_CLAIM_CHARS)})).expect("the longest subject");
        for bad in [
            json!(""),
            json!("a".repeat(MAX_CLAIM_CHARS + 1)),
            json!("al\nice"),
        ] {
            assert!(verified(json!({"sub": bad})).is_err(), "{bad}");
        }
        let groups = |n: usize| json!((0..n).map(|i| format!("g{i}")).collect::<Vec<_>>());
        verified(json!({"groups": groups(MAX_GROUPS)})).expect("the most groups");
        assert!(verified(json!({"groups": groups(MAX_GROUPS + 1)})).is_err());
        assert!(verified(json!({"groups": [""]})).is_err());
        let collections = |n: usize| json!((0..n).map(|i| format!("c{i}")).collect::<Vec<_>>());
        verified(json!({"collections": collections(MAX_COLLECTIONS)}))
            .expect("the most collections");
        assert!(verified(json!({"collections": collections(MAX_COLLECTIONS + 1)})).is_err());
        assert!(verified(json!({"collections": ["Not An Id"]})).is_err());
        let session = verified(json!({"session": "s1"})).unwrap();
        assert_eq!(session.end_user.unwrap().session.as_deref(), Some("s1"));
        assert!(verified(json!({"session": ""})).is_err());
    }

    #[test]
    fn a_key_vouches_only_for_its_own_tenant_and_only_while_unrevoked() {
        assert!(verified(json!({"tenant": "globex"})).is_err());
        assert!(verified(json!({"role": "TENANT_ADMIN"})).is_err());
        let (_dir, engine, pkcs8, kid) = setup();
        let now = now();
        let token = sign(&pkcs8, &kid, &claims(now, json!({})));
        verify(&token, &signed(&token), &engine, now * 1000).unwrap();
        let acme = TenantId::new("acme").unwrap();
        engine
            .tenant(&engine.authority().admin(&acme, "token test"))
            .unwrap()
            .revoke_verification_key(&kid.key)
            .unwrap();
        let e = verify(&token, &signed(&token), &engine, now * 1000).unwrap_err();
        assert!(e.message().contains("revoked"), "{e:?}");
        let unknown = SignedBy {
            key: "tenants/acme/verificationKeys/k2".parse().unwrap(),
            alg: Algorithm::EdDSA,
        };
        assert!(verify(&token, &unknown, &engine, now * 1000).is_err());
    }
}
