//! What an end user may reach. A tenant's backend mints tokens for its own users (see
//! `end_user_tokens`); the server, not the application, then bounds what each may do inside
//! the tenant. A token bound to a session reaches that session's memory and, for answers kept
//! per session, the caches it lists, nothing else, not even the record collections it lists.
//! Any other token reaches record reads and writes in the collections it lists, and lookups and
//! stores in the caches it lists (always within its own scope, which the engine derives from
//! the token), never a cache's collection as records, never a session, the tenant's keys, audit
//! trail or collection management. Everything not allowed here is refused: a new method is
//! closed to end users until it is added.

use bulkhead_core::{CollectionId, SessionId};
use tonic::Status;

/// The end user a token speaks for, with the reach its tenant signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUser {
    pub subject: String,
    pub groups: Vec<String>,
    pub session: Option<String>,
    pub collections: Vec<CollectionId>,
}

/// The methods an end user may call: reading and writing records of one collection.
const END_USER_METHODS: &[&str] = &[
    "RecordService/Upsert",
    "RecordService/Get",
    "RecordService/Delete",
    "RecordService/Query",
    "RecordService/Export",
    "CollectionService/GetCollection",
];

/// What inside its tenant a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach<'a> {
    /// The tenant itself, its keys or its verification keys.
    Tenant,
    /// A collection of records.
    Records(&'a CollectionId),
    /// A semantic cache.
    Cache(&'a CollectionId),
    /// A session's memory.
    Session(&'a SessionId),
}

/// The methods an end user may call on a cache it lists: within its own scope.
const CACHE_METHODS: &[&str] = &["SemanticCacheService/Lookup", "SemanticCacheService/Store"];

/// The methods a session-bound token may call, on its own session.
const SESSION_METHODS: &[&str] = &[
    "MemoryService/GetSession",
    "MemoryService/Append",
    "MemoryService/Recall",
    "MemoryService/History",
    "MemoryService/EndSession",
];

impl EndUser {
    /// Whether this user may call `method` on what the request names.
    pub fn may(&self, method: &str, reach: Reach<'_>) -> Result<(), Status> {
        let denied = |why: String| Err(Status::permission_denied(why));
        match (reach, &self.session) {
            (Reach::Cache(c), _) if CACHE_METHODS.contains(&method) => self.lists(c),
            (Reach::Session(s), Some(bound)) if SESSION_METHODS.contains(&method) => {
                if s.as_str() == bound {
                    Ok(())
                } else {
                    denied(format!(
                        "this token is bound to session {bound} and reaches no other"
                    ))
                }
            }
            (_, Some(bound)) => denied(format!(
                "this token is bound to session {bound}: it can't call {method}"
            )),
            (Reach::Records(c), None) if END_USER_METHODS.contains(&method) => self.lists(c),
            (Reach::Tenant, None) if END_USER_METHODS.contains(&method) => {
                denied("end-user tokens reach named collections only".into())
            }
            (_, None) => denied(format!(
                "end-user tokens can't call {method}: they read and write records and cached \
                 answers of the collections they list, and sessions they are bound to"
            )),
        }
    }

    /// Whether the token lists `collection`.
    fn lists(&self, collection: &CollectionId) -> Result<(), Status> {
        if self.collections.contains(collection) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "this token doesn't grant collection {collection}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(collections: &[&str], session: Option<&str>) -> EndUser {
        EndUser {
            subject: "alice".into(),
            groups: vec![],
            session: session.map(str::to_owned),
            collections: collections
                .iter()
                .map(|c| CollectionId::new(*c).unwrap())
                .collect(),
        }
    }

    #[test]
    fn an_end_user_reaches_only_record_methods_on_the_collections_granted() {
        let docs = CollectionId::new("docs").unwrap();
        let other = CollectionId::new("other").unwrap();
        let alice = user(&["docs"], None);
        for method in END_USER_METHODS {
            alice.may(method, Reach::Records(&docs)).unwrap();
            assert!(
                alice.may(method, Reach::Records(&other)).is_err(),
                "{method}"
            );
            assert!(alice.may(method, Reach::Tenant).is_err(), "{method}");
            assert!(alice.may(method, Reach::Cache(&docs)).is_err(), "{method}");
        }
        for method in CACHE_METHODS {
            alice.may(method, Reach::Cache(&docs)).unwrap();
            assert!(alice.may(method, Reach::Cache(&other)).is_err(), "{method}");
            assert!(
                alice.may(method, Reach::Records(&docs)).is_err(),
                "{method}"
            );
        }
        for method in [
            "CollectionService/DeleteCollection",
            "CollectionService/CreateCollection",
            "RecordService/Import",
            "KeyService/CreateApiKey",
            "AuditService/ListAuditEvents",
            "SemanticCacheService/Invalidate",
            "SemanticCacheService/CreateCache",
        ] {
            for reach in [Reach::Records(&docs), Reach::Cache(&docs), Reach::Tenant] {
                let e = alice.may(method, reach).unwrap_err();
                assert_eq!(e.code(), tonic::Code::PermissionDenied, "{method}");
            }
        }
        // Sessions are for session-bound tokens only.
        let s1 = SessionId::new("s1").unwrap();
        for method in SESSION_METHODS {
            assert!(alice.may(method, Reach::Session(&s1)).is_err(), "{method}");
        }
    }

    #[test]
    fn a_session_bound_token_reaches_its_own_session_and_nothing_else() {
        let docs = CollectionId::new("docs").unwrap();
        let (s1, s2) = (SessionId::new("s1").unwrap(), SessionId::new("s2").unwrap());
        let bound = user(&["docs"], Some("s1"));
        for method in SESSION_METHODS {
            bound.may(method, Reach::Session(&s1)).unwrap();
            let e = bound.may(method, Reach::Session(&s2)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{method}");
        }
        for method in END_USER_METHODS {
            let e = bound.may(method, Reach::Records(&docs)).unwrap_err();
            assert!(
                e.message().contains("bound to session s1"),
                "{method}: {e:?}"
            );
        }
        for method in ["MemoryService/ListSessions", "MemoryService/CreateSession"] {
            assert!(bound.may(method, Reach::Tenant).is_err(), "{method}");
        }
        // Its session's cached answers, in the caches it lists.
        for method in CACHE_METHODS {
            bound.may(method, Reach::Cache(&docs)).unwrap();
        }
    }
}
