//! The registry as the control plane sees it: tenants listed in id order and paged, settings
//! updated in place and kept across a restart.

use std::time::Duration;

use bulkhead_engine::{EngineError, Quota, RateLimit, ServerShare, TenantSettings};

use crate::common::*;

#[test]
fn tenants_are_listed_in_id_order_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    for name in ["c", "a", "d", "b"] {
        engine
            .create_tenant(&tenant(name), &TenantSettings::default())
            .unwrap();
    }
    let ids = |after: Option<&str>, limit| -> Vec<String> {
        let after = after.map(tenant);
        engine
            .list_tenants(after.as_ref(), limit)
            .into_iter()
            .map(|t| t.id.to_string())
            .collect()
    };
    assert_eq!(ids(None, 2), ["a", "b"]);
    assert_eq!(ids(Some("b"), 10), ["c", "d"]);
    assert_eq!(ids(Some("d"), 10), Vec::<String>::new());
    assert_eq!(engine.tenant_count(), 4);
}

#[test]
fn updated_settings_are_served_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let settings = TenantSettings {
        audit_retention: Some(Duration::from_secs(3600)),
        quota: Quota {
            max_collections: 3,
            max_records: 1000,
            max_stored_bytes: 1 << 20,
        },
        rate_limit: RateLimit {
            requests_per_second: 5.0,
            burst: 10,
            write_bytes_per_second: 4096,
        },
        max_token_lifetime: Some(Duration::from_secs(600)),
        share: ServerShare {
            requests_in_flight: 16,
            open_streams: 2,
            engine_threads: 1,
            write_bytes_in_flight: 8 << 20,
        },
    };
    {
        let engine = open(dir.path());
        tenant_with_docs(&engine, "acme", 8);
        let updated = engine.update_tenant(&tenant("acme"), &settings).unwrap();
        assert_eq!(updated.quota, settings.quota);
        assert_eq!(engine.tenant_info(&tenant("acme")).unwrap(), updated);
        assert!(matches!(
            engine.update_tenant(&tenant("ghost"), &settings),
            Err(EngineError::TenantNotFound(_))
        ));
    }
    let engine = open(dir.path());
    let info = engine.tenant_info(&tenant("acme")).unwrap();
    assert_eq!(info.audit_retention, settings.audit_retention);
    assert_eq!(info.quota, settings.quota);
    assert_eq!(info.rate_limit, settings.rate_limit);
    assert_eq!(info.max_token_lifetime, settings.max_token_lifetime);
    assert_eq!(info.share, settings.share);
    // The bound is validated like every setting: a day at most, a second at least.
    for bad in [0, bulkhead_engine::MAX_TOKEN_LIFETIME_SECS + 1] {
        let refused = engine.update_tenant(
            &tenant("acme"),
            &TenantSettings {
                max_token_lifetime: Some(Duration::from_secs(bad)),
                ..settings.clone()
            },
        );
        assert!(
            matches!(refused, Err(EngineError::InvalidArgument(_))),
            "{bad}: {refused:?}"
        );
    }
    // A share is bounded above, each field naming itself; 0 is the server's setting.
    for (share, field) in [
        (
            ServerShare {
                requests_in_flight: bulkhead_engine::MAX_REQUESTS_IN_FLIGHT + 1,
                ..ServerShare::default()
            },
            "share.requests_in_flight",
        ),
        (
            ServerShare {
                open_streams: bulkhead_engine::MAX_OPEN_STREAMS + 1,
                ..ServerShare::default()
            },
            "share.open_streams",
        ),
        (
            ServerShare {
                engine_threads: bulkhead_engine::MAX_ENGINE_THREADS + 1,
                ..ServerShare::default()
            },
            "share.engine_threads",
        ),
        (
            ServerShare {
                write_bytes_in_flight: bulkhead_engine::MAX_WRITE_BYTES_IN_FLIGHT + 1,
                ..ServerShare::default()
            },
            "share.write_bytes_in_flight",
        ),
    ] {
        let refused = engine.update_tenant(
            &tenant("acme"),
            &TenantSettings {
                share,
                ..settings.clone()
            },
        );
        assert!(
            matches!(&refused, Err(EngineError::InvalidArgument(m)) if m.contains(field)),
            "{field}: {refused:?}"
        );
    }
    assert_eq!(
        engine.tenant_info(&tenant("acme")).unwrap().share,
        settings.share,
        "a refused update changes nothing"
    );
}
