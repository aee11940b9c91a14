//! Tenant tokens: JWTs signed with a configured HS256 key, so an existing identity provider can
//! mint short-lived credentials for one tenant without an API key per user. A token carries
//! `tenant`, `role` (`READ`, `WRITE`, `TENANT_ADMIN`), `iat` and `exp`, and optionally `sub`
//! (shown in the audit trail). It binds to the tenant as it exists: a token issued before the
//! tenant was (re)created is refused, so a deleted and re-created tenant doesn't honour tokens
//! minted for its predecessor, just as it doesn't honour its keys.

use bulkhead_core::{Role, TenantId};
use bulkhead_engine::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tonic::Status;

use crate::principal::TenantCaller;

/// Clock skew tolerated on a token's times (`exp`, `nbf`, `iat`), in seconds: for identity
/// providers' and tenants' end-user tokens alike.
pub(crate) const LEEWAY_SECS: u64 = 5;

/// Whether a token issued at `iat` (seconds) was issued in the future of `now_ms`, past the
/// leeway.
pub(crate) fn issued_in_the_future(iat: u64, now_ms: u64) -> bool {
    iat.saturating_mul(1000) > now_ms + LEEWAY_SECS * 1000
}
/// Characters of `sub` kept in audit names.
const MAX_SUBJECT_CHARS: usize = 64;

#[derive(Debug, Deserialize)]
struct Claims {
    tenant: String,
    role: String,
    iat: u64,
    #[serde(default)]
    sub: Option<String>,
}

pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier(HS256, key hidden)")
    }
}

impl TokenVerifier {
    pub fn hs256(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iat"]);
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A JWT has three dot-separated parts; API keys and admin tokens don't look like that.
    pub fn looks_like_token(secret: &str) -> bool {
        secret.split('.').count() == 3 && !secret.starts_with("bh_")
    }

    /// The tenant caller a valid token names; any flaw is `UNAUTHENTICATED`.
    pub fn verify(
        &self,
        token: &str,
        engine: &Engine,
        now_ms: u64,
    ) -> Result<TenantCaller, Status> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| Status::unauthenticated(format!("invalid token: {e}")))?
            .claims;
        let tenant = TenantId::new(&claims.tenant)
            .map_err(|e| Status::unauthenticated(format!("invalid token: tenant: {e}")))?;
        let role: Role = claims.role.parse().map_err(|_| {
            Status::unauthenticated("invalid token: role must be READ, WRITE or TENANT_ADMIN")
        })?;
        if issued_in_the_future(claims.iat, now_ms) {
            return Err(Status::unauthenticated(
                "invalid token: issued in the future",
            ));
        }
        let created_ms = engine
            .tenant_info(&tenant)
            .map_err(|_| Status::unauthenticated("invalid token: its tenant does not exist"))?
            .created_at_ms;
        // Compared in whole seconds (`iat`'s unit) and without leeway: a token from the second
        // the tenant was created is accepted, one from any earlier second is not.
        if claims.iat < created_ms / 1000 {
            return Err(Status::unauthenticated(
                "invalid token: issued before its tenant was created",
            ));
        }
        let subject: String = claims
            .sub
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_SUBJECT_CHARS)
            .collect();
        Ok(TenantCaller {
            tenant,
            role,
            name: format!("jwt:{subject}"),
            end_user: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_engine::{EngineConfig, TenantSettings};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn mint(claims: serde_json::Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn now_s() -> u64 {
        crate::gate::now_ms() / 1000
    }

    #[test]
    fn a_valid_token_names_its_tenant_role_and_subject() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let acme = TenantId::new("acme").unwrap();
        engine
            .create_tenant(&acme, &TenantSettings::default())
            .unwrap();
        let v = TokenVerifier::hs256(SECRET);
        let now = crate::gate::now_ms();
        let claims = |over: serde_json::Value| {
            let mut c = json!({"tenant": "acme", "role": "WRITE", "iat": now_s(), "exp": now_s() + 60, "sub": "alice\n"});
            for (k, val) in over.as_object().unwrap() {
                if val.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = val.clone();
                }
            }
            c
        };
        let caller = v
            .verify(&mint(claims(json!({})), SECRET), &engine, now)
            .unwrap();
        assert_eq!(
            caller,
            TenantCaller {
                tenant: acme.clone(),
                role: Role::Write,
                name: "jwt:alice".into(),
                end_user: None,
            }
        );

        let refused = |token: String| {
            v.verify(&token, &engine, now)
                .unwrap_err()
                .message()
                .to_owned()
        };
        assert!(
            refused(mint(claims(json!({})), b"another-secret-another-secret-00"))
                .contains("InvalidSignature")
        );
        assert!(
            refused(mint(claims(json!({"exp": now_s() - 60})), SECRET))
                .contains("ExpiredSignature")
        );
        assert!(refused(mint(claims(json!({"iat": null})), SECRET)).contains("iat"));
        assert!(refused(mint(claims(json!({"role": "ROOT"})), SECRET)).contains("role"));
        assert!(refused(mint(claims(json!({"tenant": "Acme"})), SECRET)).contains("tenant"));
        assert!(
            refused(mint(claims(json!({"tenant": "ghost"})), SECRET)).contains("does not exist")
        );
        assert!(
            refused(mint(claims(json!({"iat": now_s() - 3600})), SECRET))
                .contains("before its tenant")
        );
        assert!(refused(mint(claims(json!({"iat": now_s() + 3600})), SECRET)).contains("future"));
        let none = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims(json!({})),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(refused(none).contains("InvalidAlgorithm"));
    }

    /// A token issued up to `LEEWAY_SECS` ahead of the server's clock (a backend whose clock
    /// runs a little fast) is accepted; one second more is refused.
    #[test]
    fn issued_at_may_run_ahead_by_the_leeway_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        engine
            .create_tenant(&TenantId::new("acme").unwrap(), &TenantSettings::default())
            .unwrap();
        let v = TokenVerifier::hs256(SECRET);
        // The server's clock on a whole second, so `iat` (whole seconds) can sit exactly on the
        // boundary.
        let server_s = now_s();
        let issued = |ahead: u64| {
            let token = mint(
                json!({"tenant": "acme", "role": "READ", "iat": server_s + ahead, "exp": server_s + 600}),
                SECRET,
            );
            v.verify(&token, &engine, server_s * 1000)
        };
        issued(0).expect("issued now");
        issued(LEEWAY_SECS).expect("issued exactly the leeway ahead");
        let refused = issued(LEEWAY_SECS + 1).unwrap_err();
        assert!(refused.message().contains("future"), "{refused:?}");
    }

    #[test]
    fn only_three_part_non_key_secrets_are_tried_as_tokens() {
        assert!(TokenVerifier::looks_like_token("a.b.c"));
        assert!(!TokenVerifier::looks_like_token("bh_0123"));
        assert!(!TokenVerifier::looks_like_token("bh_a.b.c"));
        assert!(!TokenVerifier::looks_like_token("a.b"));
    }
}
