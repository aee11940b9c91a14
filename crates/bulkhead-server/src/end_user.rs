//! What an end user may reach. A tenant's backend mints tokens for its own users (see
//! `end_user_tokens`); the server, not the application, then bounds what each may do inside
//! the tenant: only record reads and writes, only in the collections the token lists, never a
//! semantic cache's collection (its answers are scoped per user by the cache, which an end
//! user can't reach yet), never the tenant's keys, audit trail or collection management, and
//! nothing at all for a token bound to a session until sessions exist. Everything not allowed
//! here is refused: a new method is closed to end users until it is added.

use bulkhead_core::CollectionId;
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

impl EndUser {
    /// Whether this user may call `method` on `collection` (the collection the request names,
    /// `None` for a tenant-level request).
    pub fn may(&self, method: &str, collection: Option<&CollectionId>) -> Result<(), Status> {
        if self.session.is_some() {
            return Err(Status::permission_denied(
                "a session-bound token reaches only its session, and this server has no sessions",
            ));
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
            alice.may(method, Some(&docs)).unwrap();
            assert!(alice.may(method, Some(&other)).is_err(), "{method}");
            assert!(alice.may(method, None).is_err(), "{method}");
        }
        for method in [
            "CollectionService/DeleteCollection",
            "CollectionService/CreateCollection",
            "RecordService/Import",
            "KeyService/CreateApiKey",
            "AuditService/ListAuditEvents",
            "SemanticCacheService/Lookup",
        ] {
            let e = alice.may(method, Some(&docs)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{method}");
        }
    }

    #[test]
    fn a_session_bound_token_reaches_nothing_yet() {
        let docs = CollectionId::new("docs").unwrap();
        let e = user(&["docs"], Some("s1"))
            .may("RecordService/Get", Some(&docs))
            .unwrap_err();
        assert!(e.message().contains("session"), "{e:?}");
    }
}
