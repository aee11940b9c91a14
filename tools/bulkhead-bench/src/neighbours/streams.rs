//! Attacks that hold server resources with streams never allowed to finish: Export streams
//! whose replies can't be sent (the client grants each stream a flow-control window of zero, so
//! the server may not send it a byte of DATA), and Import streams that trickle a byte every two
//! seconds. They go over raw HTTP/2 (the `h2` crate), since a gRPC client reads what it is
//! sent. A stream that got under way counts as `held` until it ends; how it ended is counted
//! too, so streams the server refused, reset or ended are told apart from those it kept.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bulkhead_formats::{RecordRow, encode_stream};
use bulkhead_proto::v1 as pb;
use bytes::Bytes;
use h2::RecvStream;
use h2::client::{ResponseFuture, SendRequest};
use http::HeaderValue;
use tokio::sync::mpsc;

use super::attack::{Notes, Target};
use super::outcomes::{Counts, classify, within};
use crate::unary::{connect_tcp, frame, grpc_request, grpc_status, method};

/// Streams opened per connection, unless the server allows fewer.
const STREAMS_PER_CONNECTION: usize = 100;
/// Arrow bytes in an import's first message, then one more per [`TRICKLE_EVERY`].
const FIRST_BYTES: usize = 8;
const TRICKLE_EVERY: Duration = Duration::from_secs(2);
const HELD: &str = "held";

/// One HTTP/2 connection for streams, and how many it may carry at once.
struct Connection {
    send: SendRequest<Bytes>,
    authority: String,
    max_streams: usize,
}

async fn connect(endpoint: &str, zero_window: bool) -> Result<Connection> {
    let (tcp, authority) = connect_tcp(endpoint).await?;
    let mut builder = h2::client::Builder::new();
    if zero_window {
        builder.initial_window_size(0);
    }
    let (send, mut connection) = builder.handshake(tcp).await.context("HTTP/2 handshake")?;
    let mut ping = connection.ping_pong().context("no ping handle")?;
    tokio::spawn(connection);
    // The server's SETTINGS come first, so once the PING is answered they are known.
    ping.ping(h2::Ping::opaque()).await?;
    let max_streams = send.current_max_send_streams();
    Ok(Connection {
        send,
        authority,
        max_streams,
    })
}

/// A stream being opened: its task holds `_opening` until the stream is under way or failed.
type Opening = mpsc::Sender<Infallible>;

/// Spreads `count` streams over connections and starts `stream` on each; returns when every
/// stream is under way or has failed, with the streams per connection.
async fn open<S, F>(
    t: &Target,
    count: usize,
    zero_window: bool,
    counts: &Counts,
    stream: S,
) -> Notes
where
    S: Fn(Arc<Connection>, Opening) -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (opening, mut opened) = mpsc::channel(1);
    let (mut started, mut connections, mut per_connection) = (0, 0, STREAMS_PER_CONNECTION);
    while started < count {
        let connection = match within(t.timeout, connect(&t.endpoint, zero_window)).await {
            Ok(c) => Arc::new(c),
            Err(e) => {
                // Every stream not started yet fails with it.
                counts.add(
                    format!("connect {}", classify(&e)),
                    (count - started) as i64,
                );
                break;
            }
        };
        connections += 1;
        per_connection = per_connection.min(connection.max_streams.max(1));
        for _ in 0..per_connection.min(count - started) {
            tokio::spawn(stream(connection.clone(), opening.clone()));
            started += 1;
        }
    }
    drop(opening);
    // Every task drops its sender once its stream is under way or has failed.
    while opened.recv().await.is_some() {}
    vec![
        ("streams_per_connection", per_connection.into()),
        ("connections", connections.into()),
    ]
}

/// Sends the headers of a call of `path`; the message follows on the returned stream.
async fn call(
    c: &Connection,
    path: &str,
    authorization: &HeaderValue,
) -> Result<(ResponseFuture, h2::SendStream<Bytes>)> {
    let mut send = c.send.clone().ready().await?;
    Ok(send.send_request(grpc_request(&c.authority, path, authorization)?, false)?)
}

/// Waits for the end of a reply: trailers or a reset. Data, if any comes, is dropped without
/// releasing its flow-control capacity.
async fn end_of(mut body: RecvStream) -> Result<()> {
    while let Some(chunk) = body.data().await {
        chunk?;
    }
    grpc_status(&body.trailers().await?.unwrap_or_default())
}

/// The reply's body if its headers are a success; a refusal comes as headers only.
async fn headers(response: ResponseFuture) -> Result<RecvStream> {
    let (parts, body) = response.await?.into_parts();
    ensure!(
        parts.status == http::StatusCode::OK,
        "HTTP {}",
        parts.status
    );
    grpc_status(&parts.headers)?;
    Ok(body)
}

/// Counts a stream as held or as its failure to get under way, then lets `opening` go.
fn under_way<T>(counts: &Counts, opening: Opening, result: Result<T>) -> Option<T> {
    match &result {
        Ok(_) => counts.add(HELD, 1),
        Err(e) => counts.add(classify(e), 1),
    }
    drop(opening);
    result.ok()
}

/// Counts the end of a held stream.
fn held_until(counts: &Counts, end: Result<()>) {
    counts.add(HELD, -1);
    let outcome = end.map_or_else(|e| classify(&e), |()| "OK".to_owned());
    counts.add(format!("ended {outcome}"), 1);
}

pub async fn exports(t: Arc<Target>, counts: Counts) -> Notes {
    let request = frame(&pb::ExportRequest {
        collection: t.hnsw.clone(),
        batch_size: 0,
    });
    let (authorization, timeout, tally) = (t.read.clone(), t.timeout, counts.clone());
    open(&t, t.streams, true, &counts, move |c, opening| {
        let (request, authorization, counts) =
            (request.clone(), authorization.clone(), tally.clone());
        async move {
            let opened = within(timeout, async {
                let (response, mut message) = call(&c, method::EXPORT, &authorization).await?;
                message.send_data(request, true)?;
                headers(response).await
            })
            .await;
            if let Some(body) = under_way(&counts, opening, opened) {
                held_until(&counts, end_of(body).await);
            }
        }
    })
    .await
}

pub async fn slow_imports(t: Arc<Target>, counts: Counts) -> Notes {
    let row = RecordRow {
        id: "0".into(),
        vector: t.data.base.row(0).to_vec(),
        text: None,
        metadata: Default::default(),
        ttl_seconds: None,
    };
    let arrow = match encode_stream([std::slice::from_ref(&row)], t.data.base.dim) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => return vec![("arrow_error", e.to_string().into())],
    };
    let (collection, authorization) = (t.hnsw.clone(), t.write.clone());
    let (timeout, tally) = (t.timeout, counts.clone());
    open(&t, t.slow_imports, false, &counts, move |c, opening| {
        let (arrow, collection, counts) = (arrow.clone(), collection.clone(), tally.clone());
        let authorization = authorization.clone();
        async move {
            let started = within(timeout, async {
                let (response, mut message) = call(&c, method::IMPORT, &authorization).await?;
                let first = pb::ImportRequest {
                    collection,
                    arrow_ipc: arrow[..FIRST_BYTES].to_vec(),
                };
                message.send_data(frame(&first), false)?;
                anyhow::Ok((response, message))
            })
            .await;
            let Some((response, mut message)) = under_way(&counts, opening, started) else {
                return;
            };
            // Sends can only fail once the stream is gone, which the reply then says why.
            let trickle = async {
                for byte in arrow.iter().skip(FIRST_BYTES) {
                    tokio::time::sleep(TRICKLE_EVERY).await;
                    let next = pb::ImportRequest {
                        collection: String::new(),
                        arrow_ipc: vec![*byte],
                    };
                    if message.send_data(frame(&next), false).is_err() {
                        break;
                    }
                }
                std::future::pending::<Infallible>().await
            };
            let answer = async { end_of(headers(response).await?).await };
            tokio::select! {
                end = answer => held_until(&counts, end),
                never = trickle => match never {},
            }
        }
    })
    .await
}
