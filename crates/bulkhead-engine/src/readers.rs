//! Record-level access control (security trimming) inside one collection. A collection created
//! with access control on keeps each record's readers in the reserved field `_readers`: tags
//! `user:<id>`, `group:<id>` or `public`, indexed like a keyword field. A handle bound to a
//! reader (`TenantHandle::reading_as`, set by the server from an end user's verified token,
//! never from a request) sees there only records whose readers include one of its tags: a query
//! is restricted through the same postings filters use (so the filter planner keeps its
//! recall), a get drops the others as if absent, and neither returns the `_readers` field.
//! A record without readers is seen by no reader (fail closed), and a reader can't write in
//! such a collection, so no user can widen their own access.

use bulkhead_core::{Metadata, Value};

use crate::error::{EngineError, Result};
use crate::filter::{Condition, Filter};

/// The reserved field holding a record's readers.
pub const READERS_FIELD: &str = "_readers";
/// The tag every reader holds: a record readable by anyone the tenant lets in.
pub const PUBLIC: &str = "public";
/// Most tags in one record's `_readers`.
pub const MAX_READERS_PER_RECORD: usize = 256;

/// Whom a read is for: the tags of one end user, its groups, and `public`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    tags: Vec<String>,
    user: String,
    session: Option<String>,
}

impl Reader {
    pub fn new(user: &str, groups: &[String]) -> Self {
        let mut tags = Vec::with_capacity(groups.len() + 2);
        tags.push(format!("user:{user}"));
        tags.extend(groups.iter().map(|g| format!("group:{g}")));
        tags.push(PUBLIC.to_owned());
        Self {
            tags,
            user: user.to_owned(),
            session: None,
        }
    }

    /// This reader speaking from inside one session (its token is bound to it): the cache
    /// scopes its answers by it where a cache is kept per session.
    pub fn in_session(mut self, session: &str) -> Self {
        self.session = Some(session.to_owned());
        self
    }

    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    pub(crate) fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Whether a record with `metadata` names one of this reader's tags among its readers.
    pub(crate) fn may_read(&self, metadata: &Metadata) -> bool {
        match metadata.get(READERS_FIELD) {
            Some(Value::StringList(readers)) => readers.iter().any(|r| self.tags.contains(r)),
            Some(Value::String(reader)) => self.tags.contains(reader),
            _ => false,
        }
    }

    /// `filter` narrowed to the records this reader may read.
    pub(crate) fn restrict(&self, filter: Option<&Filter>) -> Filter {
        let mine = Filter {
            condition: Some(Condition::In {
                field: READERS_FIELD.to_owned(),
                values: self.tags.iter().cloned().map(Value::String).collect(),
            }),
            ..Filter::default()
        };
        Filter {
            must: std::iter::once(mine).chain(filter.cloned()).collect(),
            ..Filter::default()
        }
    }
}

/// Checks the readers a record of an access-controlled collection is written with: a string
/// or list of tags, each `user:<id>`, `group:<id>` or `public`.
pub(crate) fn check_readers(metadata: &Metadata) -> Result<()> {
    let tags: &[String] = match metadata.get(READERS_FIELD) {
        None => return Ok(()),
        Some(Value::String(tag)) => std::slice::from_ref(tag),
        Some(Value::StringList(tags)) => tags,
        Some(_) => {
            return Err(EngineError::InvalidArgument(format!(
                "{READERS_FIELD} must be a string or a list of strings"
            )));
        }
    };
    if tags.len() > MAX_READERS_PER_RECORD {
        return Err(EngineError::InvalidArgument(format!(
            "{READERS_FIELD} holds {} tags, at most {MAX_READERS_PER_RECORD}",
            tags.len()
        )));
    }
    for tag in tags {
        let well_formed = tag == PUBLIC
            || ["user:", "group:"].iter().any(|p| {
                tag.strip_prefix(p)
                    .is_some_and(|id| !id.is_empty() && !id.chars().any(char::is_control))
            });
        if !well_formed {
            return Err(EngineError::InvalidArgument(format!(
                "{READERS_FIELD}: {tag:?} is not user:<id>, group:<id> or public"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers(tags: &[&str]) -> Metadata {
        let list = tags.iter().map(|t| (*t).to_owned()).collect();
        [(READERS_FIELD.to_owned(), Value::StringList(list))].into()
    }

    #[test]
    fn a_reader_reads_records_naming_its_user_a_group_of_it_or_public() {
        let alice = Reader::new("alice", &["eng".to_owned()]);
        assert!(alice.may_read(&readers(&["user:alice"])));
        assert!(alice.may_read(&readers(&["user:bob", "group:eng"])));
        assert!(alice.may_read(&readers(&["public"])));
        assert!(!alice.may_read(&readers(&["user:bob", "group:sales"])));
        assert!(!alice.may_read(&readers(&[])));
        assert!(
            !alice.may_read(&Metadata::new()),
            "no readers: no reader (fail closed)"
        );
        assert!(
            !alice.may_read(&readers(&["alice", "eng"])),
            "tags, not bare ids"
        );
        let one: Metadata = [(READERS_FIELD.to_owned(), Value::String("user:alice".into()))].into();
        assert!(alice.may_read(&one));
    }

    #[test]
    fn readers_are_tags_of_a_known_kind() {
        check_readers(&readers(&["user:a", "group:b", "public"])).unwrap();
        check_readers(&Metadata::new()).unwrap();
        for bad in ["alice", "user:", "group:", "everyone", "user:\u{0}x"] {
            assert!(check_readers(&readers(&[bad])).is_err(), "{bad:?}");
        }
        let not_text: Metadata = [(READERS_FIELD.to_owned(), Value::Int(1))].into();
        assert!(check_readers(&not_text).is_err());
        let many: Vec<String> = (0..=MAX_READERS_PER_RECORD)
            .map(|i| format!("user:{i}"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(check_readers(&readers(&many)).is_err());
        check_readers(&readers(&many[..MAX_READERS_PER_RECORD])).expect("exactly the most");
    }

    #[test]
    fn a_restricted_filter_keeps_the_callers_filter_and_adds_the_readers() {
        let alice = Reader::new("alice", &[]);
        let own = Filter {
            condition: Some(Condition::Exists {
                field: "lang".into(),
            }),
            ..Filter::default()
        };
        let restricted = alice.restrict(Some(&own));
        assert_eq!(restricted.must.len(), 2);
        assert_eq!(restricted.must[1], own);
        assert_eq!(alice.restrict(None).must.len(), 1);
    }
}
