//! Below the tenant: end users and sessions are partitions the server enforces too. Tenant A
//! registers a signing key and mints tokens for three users (two in a group each, one in
//! none) and for a session, the way its backend would.
//!
//! - `user-acl`: a collection with access control holds canaries readable by one user, by one
//!   group, by everybody (`public`) and by nobody, all on the same vectors. Each user's
//!   queries, gets and export must return exactly the records of that user, its groups and
//!   `public`, never another user's, another group's or an unassigned one.
//! - `session-bound`: two sessions of A hold canaries under the same item ids and vectors. A
//!   token bound to the first reads only its own items and is refused on the second (every
//!   session RPC) and on A's records; once it ends its session, the session is NOT_FOUND at
//!   once.
//! - `cache-scope`: each user, and each of two sessions of one user, stores its canary as the
//!   answer to the identical prompt in a cache kept per user and one kept per session; every
//!   lookup, at thresholds down to -1, returns the asker's own canary or nothing, and naming
//!   another scope is refused.

use std::collections::BTreeSet;

use bulkhead_client::{
    CacheLookup, CachePolicy, CacheScope, CacheStore, ClientError, CollectionSpec, EndUserScope,
    Metric, Query, Record, Value,
};
use bulkhead_formats::read_stream;
use tonic::Code;

use super::{settle, unexpected};
use crate::canary::{self, Canary, CanaryBook, DIMENSION};
use crate::fixture::{Fixture, ProbeTenant};
use crate::raw::{Auth, Rpc, Target};
use crate::report::{ProbeResult, Problems};
use crate::user_tokens::{Claims, UserTokens};

/// The access-controlled collection of canaries.
const ACL_COLLECTION: &str = "acl-canaries";
/// Records per reader label, on the same vectors for every label.
const PER_LABEL: usize = 4;
/// Who the records are for: `(label, readers tag)`; `None` carries no readers at all.
const LABELS: [(&str, Option<&str>); 7] = [
    ("user-u0", Some("user:u0")),
    ("user-u1", Some("user:u1")),
    ("user-u2", Some("user:u2")),
    ("group-g0", Some("group:g0")),
    ("group-g1", Some("group:g1")),
    ("public", Some("public")),
    ("nobody", None),
];
/// The users the probe speaks as, with their groups.
const USERS: [(&str, &[&str]); 3] = [("u0", &["g0"]), ("u1", &["g1"]), ("u2", &[])];
/// The two sessions of the session probe.
const SESSIONS: [&str; 2] = ["probe-s0", "probe-s1"];

pub async fn run(f: &Fixture) -> Vec<ProbeResult> {
    let a = &f.tenants[0];
    let registered = async { UserTokens::register(&f.with_key(a, &a.admin)?, "probe-users").await };
    let tokens = match registered.await {
        Ok(t) => t,
        Err(e) => {
            let why = format!("could not register a signing key: {e:#}");
            return vec![
                ProbeResult::fail("user-acl", why.clone()),
                ProbeResult::fail("session-bound", why.clone()),
                ProbeResult::fail("cache-scope", why),
            ];
        }
    };
    vec![
        settle("user-acl", user_acl(f, a, &tokens).await),
        settle("session-bound", session_bound(f, a, &tokens).await),
        settle("cache-scope", cache_scope(f, a, &tokens).await),
    ]
}

/// The caches of the cache-scope probe: kept per user, and per session.
const USER_CACHE: &str = "probe-user-answers";
const SESSION_CACHE: &str = "probe-session-answers";
/// The sessions whose answers the per-session cache keeps apart.
const CACHE_SESSIONS: [&str; 2] = ["probe-cache-s0", "probe-cache-s1"];
/// Lookup thresholds, down to the lowest.
const THRESHOLDS: [f32; 4] = [-1.0, 0.0, 0.5, 0.99];

async fn cache_scope(
    f: &Fixture,
    a: &ProbeTenant,
    tokens: &UserTokens,
) -> anyhow::Result<ProbeResult> {
    const NAME: &str = "cache-scope";
    let service = f.with_key(a, &a.write)?;
    let policy = |end_user_scope| CachePolicy {
        end_user_scope,
        similarity_floor: None,
    };
    for (cache, scope) in [
        (USER_CACHE, EndUserScope::User),
        (SESSION_CACHE, EndUserScope::Session),
    ] {
        service
            .create_cache_with_policy(cache, DIMENSION as u32, Metric::Cosine, None, policy(scope))
            .await?;
    }
    let hour = std::time::Duration::from_secs(3600);
    for session in CACHE_SESSIONS {
        let options = bulkhead_client::SessionOptions::new(0, hour, hour);
        service.create_session(session, &options).await?;
    }
    // Askers: each user in the per-user cache, two sessions of u0 in the per-session cache.
    let askers: Vec<(String, &str, Option<&str>, &str)> = USERS
        .iter()
        .map(|(user, _)| {
            (
                owner(a, &format!("cache-user-{user}")),
                *user,
                None,
                USER_CACHE,
            )
        })
        .chain(
            CACHE_SESSIONS
                .iter()
                .map(|s| (owner(a, s), "u0", Some(*s), SESSION_CACHE)),
        )
        .collect();
    let mut book = CanaryBook::default();
    let prompt = canary::vector(0, 0);
    // The service's tenant-wide answer to the same prompt in both caches: no end user may get it.
    let shared = Canary::new(&owner(a, "cache-shared"));
    book.register(&shared);
    for cache in [USER_CACHE, SESSION_CACHE] {
        let entry = CacheStore {
            vector: prompt.clone(),
            prompt: "the shared prompt".into(),
            response: shared.text("answer"),
            scope: CacheScope::Shared,
            ..CacheStore::default()
        };
        service.cache_store(cache, entry).await?;
    }
    let mut clients = Vec::new();
    for (label, user, session, cache) in &askers {
        let canary = Canary::new(label);
        book.register(&canary);
        let token = tokens.mint(&Claims {
            sub: user,
            collections: &[USER_CACHE, SESSION_CACHE],
            session: *session,
            write: true,
            ..Claims::default()
        })?;
        let client = f.client.tenant(&a.id, &token)?;
        let entry = CacheStore {
            vector: prompt.clone(),
            prompt: "the shared prompt".into(),
            response: canary.text("answer"),
            ..CacheStore::default()
        };
        client.cache_store(cache, entry).await?;
        clients.push((label.clone(), client, *cache));
    }
    let mut problems = Problems::default();
    let mut lookups = 0;
    for (label, client, cache) in &clients {
        for threshold in THRESHOLDS {
            lookups += 1;
            let found = client
                .cache_find(cache, CacheLookup::new(prompt.clone(), threshold))
                .await?;
            match found.map(|e| e.response) {
                Some(text) if book.owner(&text) == Some(label.as_str()) => {}
                Some(text) => problems.push(format!(
                    "{label} at {threshold} got the answer of {:?}",
                    book.owner(&text)
                )),
                None => problems.push(format!("{label} at {threshold} missed its own answer")),
            }
        }
        // Naming another asker's scope, or the tenant-wide entries, as a request may try.
        let asking = |other: &str| {
            let lookup = CacheLookup::new(prompt.clone(), -1.0);
            match other {
                "shared" => lookup.shared(),
                _ => lookup.in_scope(other),
            }
        };
        for other in [
            "user:u1",
            "session:probe-cache-s1",
            "user:someone-else",
            "shared",
        ] {
            lookups += 1;
            let asked = asking(other);
            match client.cache_find(cache, asked).await {
                Err(ClientError::PermissionDenied(_)) => {}
                Ok(Some(e)) if book.owner(&e.response) == Some(label.as_str()) => {}
                Ok(Some(e)) => problems.push(format!(
                    "{label} asking for scope {other} got the answer of {:?}",
                    book.owner(&e.response)
                )),
                Ok(None) => problems.push(format!(
                    "{label} asking for scope {other}: answered, not refused"
                )),
                Err(e) => problems.push(format!("{label} asking for scope {other}: {e}")),
            }
        }
    }
    Ok(problems.verdict(
        NAME,
        format!(
            "{lookups} lookups of one prompt by {} users and 2 sessions, at thresholds down to -1 \
             and naming other scopes or the shared entries: each got only its own answer or a \
             refusal",
            USERS.len()
        ),
    ))
}

/// The owner name of a label's canaries in tenant `t` (no `:`, which the canary text uses).
fn owner(t: &ProbeTenant, label: &str) -> String {
    format!("{}/{label}", t.id)
}

async fn user_acl(
    f: &Fixture,
    a: &ProbeTenant,
    tokens: &UserTokens,
) -> anyhow::Result<ProbeResult> {
    const NAME: &str = "user-acl";
    let writer = f.with_key(a, &a.write)?;
    writer
        .create_collection(
            ACL_COLLECTION,
            &CollectionSpec::new(DIMENSION as u32, Metric::Cosine).with_access_control(),
        )
        .await?;
    let mut book = CanaryBook::default();
    let mut all_ids = Vec::new();
    for (label, readers) in LABELS {
        let canary = Canary::new(&owner(a, label));
        book.register(&canary);
        let records: Vec<Record> = (0..PER_LABEL)
            .map(|i| {
                let id = format!("{label}-{i}");
                all_ids.push(id.clone());
                let record = Record::new(&id, canary::vector(i, 0)).with_text(canary.text(&id));
                match readers {
                    Some(tag) => record.with_metadata("_readers", Value::String(tag.to_owned())),
                    None => record,
                }
            })
            .collect();
        writer.upsert(ACL_COLLECTION, &records).await?;
    }
    let ids: Vec<&str> = all_ids.iter().map(String::as_str).collect();
    let mut problems = Problems::default();
    let mut reads = 0;
    for (user, groups) in USERS {
        let allowed: BTreeSet<String> = std::iter::once(format!("user-{user}"))
            .chain(groups.iter().map(|g| format!("group-{g}")))
            .chain(std::iter::once("public".to_owned()))
            .map(|label| owner(a, &label))
            .collect();
        let expected: BTreeSet<String> = LABELS
            .iter()
            .filter(|(label, _)| allowed.contains(&owner(a, label)))
            .flat_map(|(label, _)| (0..PER_LABEL).map(move |i| format!("{label}-{i}")))
            .collect();
        let token = tokens.mint(&Claims {
            sub: user,
            groups,
            collections: &[ACL_COLLECTION],
            ..Claims::default()
        })?;
        let client = f.client.tenant(&a.id, &token)?;
        let mut check = |how: &str, got: Vec<(String, Option<String>)>, complete: bool| {
            for (id, text) in &got {
                let owner = text.as_deref().and_then(|t| book.owner(t));
                if !owner.is_some_and(|o| allowed.contains(o)) {
                    problems.push(format!("{user} {how} got {id} of {owner:?}"));
                }
            }
            let got: BTreeSet<String> = got.into_iter().map(|(id, _)| id).collect();
            if complete && got != expected {
                problems.push(format!(
                    "{user} {how}: got {} records, its users, groups and public hold {}: missing {:?}",
                    got.len(),
                    expected.len(),
                    expected.difference(&got).collect::<Vec<_>>()
                ));
            }
        };
        for i in 0..PER_LABEL {
            reads += 1;
            let query = Query::new(canary::vector(i, 0), f.top_k).with_text();
            let hits = client.query(ACL_COLLECTION, &query).await?;
            check(
                "query",
                hits.into_iter().map(|h| (h.id, h.text)).collect(),
                false,
            );
        }
        reads += 1;
        let records = client.get(ACL_COLLECTION, &ids).await?;
        check(
            "get",
            records.into_iter().map(|r| (r.id, r.text)).collect(),
            true,
        );
        reads += 1;
        let mut ipc = Vec::new();
        let exported = client
            .export_arrow(ACL_COLLECTION, |chunk| {
                ipc.extend_from_slice(chunk);
                Ok(())
            })
            .await;
        match exported {
            Err(bulkhead_client::ClientError::PermissionDenied(_)) => {}
            Err(e) => problems.push(format!("{user} export: {e}")),
            Ok(_) => {
                let mut rows = Vec::new();
                read_stream(&ipc[..], DIMENSION, ipc.len().max(1), |batch| {
                    rows.extend(batch.into_iter().map(|r| (r.id, r.text)));
                    Ok(())
                })?;
                check("export", rows, false);
            }
        }
    }
    Ok(problems.verdict(
        NAME,
        format!(
            "{reads} reads (queries at top_k {}, a get of all {} ids, an export) by {} users of \
             an access-controlled collection: each saw exactly its own, its groups' and public \
             records",
            f.top_k,
            ids.len(),
            USERS.len()
        ),
    ))
}

async fn session_bound(
    f: &Fixture,
    a: &ProbeTenant,
    tokens: &UserTokens,
) -> anyhow::Result<ProbeResult> {
    const NAME: &str = "session-bound";
    let service = f.with_key(a, &a.admin)?;
    let mut book = CanaryBook::default();
    for session in SESSIONS {
        let canary = Canary::new(&owner(a, session));
        book.register(&canary);
        canary::plant_session(&service, session, &canary, 0).await?;
    }
    let [mine, theirs] = SESSIONS.map(|s| Target {
        session: format!("tenants/{}/sessions/{s}", a.id),
        ..Target::tenant(&a.id, a.read.key_id(), "leakprobe session intruder")
    });
    let token = tokens.mint(&Claims {
        sub: "u0",
        collections: &[canary::COLLECTION],
        session: Some(SESSIONS[0]),
        write: true,
        ..Claims::default()
    })?;
    let bound = Auth::bearer(&token)?;
    let service_auth = Auth::bearer(&a.read.secret)?;
    let me = owner(a, SESSIONS[0]);
    let mut problems = Problems::default();
    // Its own session: every item, and only its own.
    for rpc in [Rpc::Recall, Rpc::History] {
        match f.raw.send(rpc, &bound, &mine).await {
            Ok(answer) => {
                let own = answer
                    .records
                    .iter()
                    .filter(|(id, text)| book.misattribution(&me, id, text.as_deref()).is_none())
                    .count();
                if own != answer.records.len() || own != canary::RECORDS {
                    problems.push(format!(
                        "{rpc:?} of its own session: {own} of {} items its own, {} planted",
                        answer.records.len(),
                        canary::RECORDS
                    ));
                }
            }
            Err(s) => problems.push(format!(
                "{rpc:?} of its own session: {:?} {}",
                s.code(),
                s.message()
            )),
        }
    }
    // The other session and the tenant's records: refused, whatever the method.
    let refused = [
        Rpc::Recall,
        Rpc::History,
        Rpc::GetSession,
        Rpc::Append,
        Rpc::EndSession,
    ];
    for rpc in refused {
        let outcome = f.raw.send(rpc, &bound, &theirs).await;
        if let Some(got) = unexpected(&outcome, &[Code::PermissionDenied], &me, &book) {
            problems.push(format!("{rpc:?} on the other session: {got}"));
        }
    }
    let own_tenant = Target::tenant(&a.id, a.read.key_id(), "leakprobe session intruder");
    for rpc in [Rpc::Get, Rpc::Query, Rpc::ListSessions, Rpc::CreateSession] {
        let outcome = f.raw.send(rpc, &bound, &own_tenant).await;
        if let Some(got) = unexpected(&outcome, &[Code::PermissionDenied], &me, &f.book) {
            problems.push(format!("{rpc:?} with a session-bound token: {got}"));
        }
    }
    // The other session is whole, read by the service.
    let theirs_owner = owner(a, SESSIONS[1]);
    match f.raw.send(Rpc::History, &service_auth, &theirs).await {
        Ok(answer) => {
            let leaks: Vec<_> = answer
                .records
                .iter()
                .filter_map(|(id, text)| book.misattribution(&theirs_owner, id, text.as_deref()))
                .collect();
            if !leaks.is_empty() || answer.records.len() != canary::RECORDS {
                problems.push(format!(
                    "the other session now holds {}: {leaks:?}",
                    answer.summary
                ));
            }
        }
        Err(s) => problems.push(format!(
            "reading the other session: {:?} {}",
            s.code(),
            s.message()
        )),
    }
    // Ended: gone at once.
    f.raw.send(Rpc::EndSession, &bound, &mine).await?;
    for rpc in [Rpc::Recall, Rpc::History, Rpc::GetSession] {
        for auth in [&bound, &service_auth] {
            let outcome = f.raw.send(rpc, auth, &mine).await;
            if let Some(got) = unexpected(&outcome, &[Code::NotFound], &me, &book) {
                problems.push(format!("{rpc:?} right after the session ended: {got}"));
            }
        }
    }
    Ok(problems.verdict(
        NAME,
        "a token bound to one of two sessions with identical item ids and vectors read all and \
         only its own items, was refused on every session RPC of the other and on the tenant's \
         records, and its session was NOT_FOUND the moment it ended",
    ))
}
