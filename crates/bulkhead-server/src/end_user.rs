//! What an end user may reach. A tenant's backend mints tokens for its own users (see
//! `end_user_tokens`); the server, not the application, then bounds what each may do inside
//! the tenant. A token bound to a session reaches that session's memory and nothing else, not
//! even the collections it lists. Any other token reaches only record reads and writes, only in
//! the collections it lists, never a semantic cache's collection (its answers are scoped per
//! user by the cache, which an end user can't reach yet), never a session, the tenant's keys,
//! audit trail or collection management. Everything not allowed here is refused: a new method
//! is closed to end users until it is added.

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

/// The methods a session-bound token may call, on its own session.
const SESSION_METHODS: &[&str] = &[
    "MemoryService/GetSession",
    "MemoryService/Append",
    "MemoryService/Recall",
    "MemoryService/History",
    "MemoryService/EndSession",
];

impl EndUser {
    /// Whether this user may call `method` on what the request names: `collection` (a
    /// collection of records) or `session`, or neither for a tenant-level request.
    pub fn may(
        &self,
        method: &str,
        collection: Option<&CollectionId>,
        session: Option<&SessionId>,
    ) -> Result<(), Status> {
        if let Some(bound) = &self.session {
            return match session {
                Some(s) if s.as_str() == bound && SESSION_METHODS.contains(&method) => Ok(()),
                Some(_) if SESSION_METHODS.contains(&method) => Err(Status::permission_denied(
                    format!("this token is bound to session {bound} and reaches no other"),
                )),
                _ => Err(Status::permission_denied(format!(
                    "this token is bound to session {bound}: it can't call {method}"
                ))),
            };
        }
        if !END_USER_METHODS.contains(&method) {
            return Err(Status::permission_denied(format!(
                "end-user tokens can't call {method}: they read and write records only"
            )));
        }
        match collection {
            Some(c) if self.collections.contains(c) => Ok(()),
            Some(c) => Err(Status::permission_denied(format!(
                "this token doesn't grant collection {c}"
            ))),
            None => Err(Status::permission_denied(
                "end-user tokens reach named collections only",
            )),
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
            alice.may(method, Some(&docs), None).unwrap();
            assert!(alice.may(method, Some(&other), None).is_err(), "{method}");
            assert!(alice.may(method, None, None).is_err(), "{method}");
        }
        for method in [
            "CollectionService/DeleteCollection",
            "CollectionService/CreateCollection",
            "RecordService/Import",
            "KeyService/CreateApiKey",
            "AuditService/ListAuditEvents",
            "SemanticCacheService/Lookup",
        ] {
            let e = alice.may(method, Some(&docs), None).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{method}");
        }
        // Sessions are for session-bound tokens only.
        let s1 = SessionId::new("s1").unwrap();
        for method in SESSION_METHODS {
            assert!(alice.may(method, None, Some(&s1)).is_err(), "{method}");
        }
    }

    #[test]
    fn a_session_bound_token_reaches_its_own_session_and_nothing_else() {
        let docs = CollectionId::new("docs").unwrap();
        let (s1, s2) = (SessionId::new("s1").unwrap(), SessionId::new("s2").unwrap());
        let bound = user(&["docs"], Some("s1"));
        for method in SESSION_METHODS {
            bound.may(method, None, Some(&s1)).unwrap();
            let e = bound.may(method, None, Some(&s2)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{method}");
        }
        for method in END_USER_METHODS {
            let e = bound.may(method, Some(&docs), None).unwrap_err();
            assert!(
                e.message().contains("bound to session s1"),
                "{method}: {e:?}"
            );
        }
        for method in ["MemoryService/ListSessions", "MemoryService/CreateSession"] {
            assert!(bound.may(method, None, None).is_err(), "{method}");
        }
    }
}
