//! Starting and stopping a real server, and small request helpers.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bulkhead_proto::v1 as pb;
use pb::admin_service_client::AdminServiceClient;
use pb::audit_service_client::AuditServiceClient;
use pb::collection_service_client::CollectionServiceClient;
use pb::key_service_client::KeyServiceClient;
use pb::memory_service_client::MemoryServiceClient;
use pb::record_service_client::RecordServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

pub const ADMIN: &str = "e2e-admin-token-0123456789";

/// The `bulkhead` binary under test: this build's, or the one `BULKHEAD_E2E_BIN` names, which
/// runs the suite against another build (to show a new test failing on the code before a fix).
pub fn bulkhead_bin() -> std::path::PathBuf {
    std::env::var_os("BULKHEAD_E2E_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_bulkhead").into())
}

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    _temp: Option<tempfile::TempDir>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let mut s = Self::start_in(temp.path(), &[]);
        s._temp = Some(temp);
        s
    }

    /// Starts a server on `dir` with extra `serve` arguments; waits until it listens.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Self {
        Self::start_at(dir, "127.0.0.1:0", extra)
    }

    /// Like [`Server::start_in`], listening on `listen`.
    pub fn start_at(dir: &Path, listen: &str, extra: &[&str]) -> Self {
        Self::start_with_admin_token(dir, listen, extra, Some(ADMIN))
    }

    /// Like [`Server::start_at`] with `admin_token` as `BULKHEAD_ADMIN_TOKEN`, or none at all
    /// (the server then generates one into the data directory).
    pub fn start_with_admin_token(
        dir: &Path,
        listen: &str,
        extra: &[&str],
        admin_token: Option<&str>,
    ) -> Self {
        let mut command = Command::new(bulkhead_bin());
        match admin_token {
            Some(token) => command.env("BULKHEAD_ADMIN_TOKEN", token),
            None => command.env_remove("BULKHEAD_ADMIN_TOKEN"),
        };
        let mut child = command
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning bulkhead");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Logged before the address is handed over, so a caller that checks the log
                // right after `start` sees the listening line.
                let addr = line.contains("bulkhead listening").then(|| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix("addr="))
                        .map(str::to_owned)
                });
                sink.lock().unwrap().push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("server did not start: {:?}", log.lock().unwrap()));
        Self {
            child: Some(child),
            addr,
            _temp: None,
            log,
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .expect("connecting")
    }

    /// A Rust SDK client of this server.
    pub async fn sdk(&self) -> bulkhead_client::Client {
        bulkhead_client::Client::connect(format!("http://{}", self.addr))
            .await
            .expect("connecting the SDK")
    }

    pub async fn clients(&self) -> Clients {
        let ch = self.channel().await;
        Clients {
            admin: AdminServiceClient::new(ch.clone()),
            keys: KeyServiceClient::new(ch.clone()),
            collections: CollectionServiceClient::new(ch.clone()),
            records: RecordServiceClient::new(ch.clone()),
            memory: MemoryServiceClient::new(ch.clone()),
            audit: AuditServiceClient::new(ch),
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Clone)]
pub struct Clients {
    pub admin: AdminServiceClient<Channel>,
    pub keys: KeyServiceClient<Channel>,
    pub collections: CollectionServiceClient<Channel>,
    pub records: RecordServiceClient<Channel>,
    pub memory: MemoryServiceClient<Channel>,
    pub audit: AuditServiceClient<Channel>,
}

/// `msg` with `authorization: Bearer <secret>`.
pub fn authed<T>(secret: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {secret}").parse().unwrap());
    r
}

/// The first 1,000 events of `tenant`'s audit trail, read with `secret`.
pub async fn audit_events(c: &mut Clients, secret: &str, tenant: &str) -> Vec<pb::AuditEvent> {
    c.audit
        .list_audit_events(authed(
            secret,
            pb::ListAuditEventsRequest {
                parent: format!("tenants/{tenant}"),
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events
}

pub fn code<T: std::fmt::Debug>(r: Result<T, Status>) -> Code {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => s.code(),
    }
}

pub async fn create_tenant(c: &mut Clients, id: &str) {
    c.admin
        .create_tenant(authed(
            ADMIN,
            pb::CreateTenantRequest {
                tenant_id: id.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
}

pub async fn create_key(
    c: &mut Clients,
    tenant: &str,
    role: pb::Role,
    ttl: Option<i64>,
) -> (String, String) {
    let r = c
        .keys
        .create_api_key(authed(
            ADMIN,
            pb::CreateApiKeyRequest {
                parent: format!("tenants/{tenant}"),
                role: role as i32,
                ttl_seconds: ttl,
                description: "e2e".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    (r.key.unwrap().name, r.secret)
}

pub async fn create_collection(c: &mut Clients, secret: &str, tenant: &str, coll: &str, dim: u32) {
    c.collections
        .create_collection(authed(
            secret,
            pb::CreateCollectionRequest {
                parent: format!("tenants/{tenant}"),
                collection_id: coll.into(),
                dimension: dim,
                metric: pb::Metric::Cosine as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
}

/// Creates session `id` of `tenant` for memories of `dim` dimensions, ended after `idle_secs`
/// without use (or an hour in all).
pub async fn create_session(
    c: &mut Clients,
    secret: &str,
    tenant: &str,
    id: &str,
    dim: u32,
    idle_secs: i64,
) {
    c.memory
        .create_session(authed(
            secret,
            pb::CreateSessionRequest {
                parent: format!("tenants/{tenant}"),
                session_id: id.into(),
                idle_ttl_seconds: idle_secs,
                absolute_ttl_seconds: 3600,
                dimension: dim,
                metric: pb::Metric::Cosine.into(),
            },
        ))
        .await
        .unwrap();
}

pub fn unit(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

pub fn record(id: &str, seed: u64, dim: usize, text: &str) -> pb::Record {
    pb::Record {
        id: id.into(),
        vector: unit(seed, dim),
        text: Some(text.into()),
        ..Default::default()
    }
}

/// An Upsert into `tenant`'s `docs` of `records` records of about a kilobyte each, ids `v0`,
/// `v1`, ….
pub fn kilobyte_upsert(tenant: &str, records: u64, dim: usize) -> pb::UpsertRequest {
    pb::UpsertRequest {
        collection: format!("tenants/{tenant}/collections/docs"),
        records: (0..records)
            .map(|i| record(&format!("v{i}"), i, dim, &"x".repeat(1000)))
            .collect(),
    }
}

/// A tenant with a WRITE key and a collection `docs` holding `n` records tagged with the tenant.
pub async fn seeded_tenant(c: &mut Clients, tenant: &str, n: u64, dim: usize) -> String {
    create_tenant(c, tenant).await;
    let (_, secret) = create_key(c, tenant, pb::Role::Write, None).await;
    create_collection(c, &secret, tenant, "docs", dim as u32).await;
    let records = (0..n)
        .map(|i| record(&format!("r{i}"), i, dim, &format!("owner={tenant}")))
        .collect();
    c.records
        .upsert(authed(
            &secret,
            pb::UpsertRequest {
                collection: format!("tenants/{tenant}/collections/docs"),
                records,
            },
        ))
        .await
        .unwrap();
    secret
}
