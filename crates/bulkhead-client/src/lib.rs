//! The Rust SDK for Bulkhead.
//!
//! A RAG backend serving many customers holds one [`TenantClient`] per customer request, made
//! from the customer's own key. The handle is fixed to its tenant when it is made: its methods
//! take collection ids, never tenant ids, and build every resource name themselves, so a bug
//! in the application can't send one customer's query to another customer's data. Tenant
//! management lives on the separate [`AdminClient`], which needs the server's admin token.
//!
//! Calls carry a deadline and are retried with backoff only when the server answers
//! `UNAVAILABLE`; every other failure is returned at once as a [`ClientError`] variant.
//!
//! ```no_run
//! use bulkhead_client::{Client, CollectionSpec, Metric, Query, Record, Role, TenantOptions};
//!
//! # async fn demo(admin_token: &str) -> Result<(), bulkhead_client::ClientError> {
//! let client = Client::connect("http://127.0.0.1:7600").await?;
//!
//! // An operator creates the tenant and a key for it.
//! let admin = client.admin(admin_token)?;
//! admin.create_tenant("acme", &TenantOptions::default()).await?;
//! let key = admin.create_key("acme", Role::Write, None, "rag backend").await?;
//!
//! // The application works through a handle that can only reach `acme`.
//! let acme = client.tenant("acme", &key.secret)?;
//! acme.create_collection("docs", &CollectionSpec::new(3, Metric::Cosine)).await?;
//! acme.upsert("docs", &[
//!     Record::new("a", vec![1.0, 0.0, 0.0]).with_text("apples"),
//!     Record::new("b", vec![0.0, 1.0, 0.0]).with_text("bananas"),
//! ]).await?;
//! let hits = acme.query("docs", &Query::new(vec![0.9, 0.1, 0.0], 1).with_text()).await?;
//! assert_eq!(hits[0].id, "a");
//! # Ok(())
//! # }
//! ```
//!
//! A malformed tenant or collection id is refused before anything is sent. (A `Client` needs a
//! server to connect to, so this example is only compiled here; the same call with the same
//! id is run against a server, and its assertion checked, by the e2e test
//! `sdk::an_application_works_only_through_the_sdk`.)
//!
//! ```no_run
//! # async fn demo(client: bulkhead_client::Client) {
//! let err = client.tenant("Acme/../other", "secret").unwrap_err();
//! assert!(matches!(err, bulkhead_client::ClientError::Local(_)));
//! # }
//! ```
#![forbid(unsafe_code)]

mod admin;
mod client;
mod connection;
mod error;
mod keys;
mod pages;
mod sessions;
mod tenant;
mod tls;
mod types;
mod verification_keys;

pub use admin::{AdminClient, TenantOptions, TenantUpdate};
pub use bulkhead_core::{Metadata, Metric, Role, Value};
pub use bulkhead_proto::v1 as proto;
/// A metadata value as the wire carries it, for filters built from `proto` messages.
pub use bulkhead_wire::value_to_pb;
pub use client::{Client, ClientBuilder};
pub use error::{ClientError, Result};
pub use sessions::{Memory, MemoryKind, Recall, SessionClient, SessionOptions};
pub use tenant::{DEFAULT_BATCH_BYTES, DEFAULT_BATCH_RECORDS, TenantClient};
pub use tls::TlsOptions;
pub use types::{
    CacheLookup, CachePolicy, CacheScope, CacheStore, CollectionSpec, CreatedKey, EndUserScope,
    Hit, Query, Record,
};
