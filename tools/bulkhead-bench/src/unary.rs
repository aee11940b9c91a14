//! A lean unary gRPC caller on HTTP/2 for the query load, so that the harness, which shares the
//! cores with the server it measures, spends as little on itself as a client in another
//! process would.
//!
//! Why not tonic's client: it sends each call in three writes (headers, message, end of stream;
//! hyper waits for the connection task to grant flow-control capacity before each body frame,
//! seen with strace), so each call costs the client three sends and the server three segments
//! to receive. This caller queues the headers, the message and the end of the stream before the
//! connection task runs, so they leave in one write, as grpc-go and grpc-core clients send a
//! small unary call. Only the 5-byte gRPC message framing and the status trailers are handled
//! here; HTTP/2 itself is the `h2` crate's.

use anyhow::{Context, Result, bail, ensure};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use http::HeaderValue;

/// Paths of the methods the benches call.
pub mod method {
    pub const QUERY: &str = "/bulkhead.v1.RecordService/Query";
    pub const UPSERT: &str = "/bulkhead.v1.RecordService/Upsert";
    pub const IMPORT: &str = "/bulkhead.v1.RecordService/Import";
    pub const EXPORT: &str = "/bulkhead.v1.RecordService/Export";
    pub const LIST_AUDIT_EVENTS: &str = "/bulkhead.v1.AuditService/ListAuditEvents";
    pub const CREATE_API_KEY: &str = "/bulkhead.v1.KeyService/CreateApiKey";
    pub const REVOKE_API_KEY: &str = "/bulkhead.v1.KeyService/RevokeApiKey";
}

/// One HTTP/2 connection to the server.
pub struct UnaryCaller {
    send: SendRequest<Bytes>,
    authority: String,
}

impl UnaryCaller {
    /// Connects to `endpoint` (`http://host:port`, cleartext HTTP/2).
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let (tcp, authority) = connect_tcp(endpoint).await?;
        let (send, connection) = h2::client::handshake(tcp)
            .await
            .with_context(|| format!("HTTP/2 handshake with {endpoint}"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("h2 connection closed: {e}");
            }
        });
        Ok(Self { send, authority })
    }

    /// Calls the unary method `path` (`/package.Service/Method`) with `message`.
    pub async fn call<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        path: &str,
        authorization: &HeaderValue,
        message: &Req,
    ) -> Result<Resp> {
        self.call_framed(path, authorization, frame(message)).await
    }

    /// Like [`call`](Self::call) with a message already framed by [`frame`], so that a request
    /// sent many times is encoded once.
    pub async fn call_framed<Resp: prost::Message + Default>(
        &self,
        path: &str,
        authorization: &HeaderValue,
        framed: Bytes,
    ) -> Result<Resp> {
        let request = grpc_request(&self.authority, path, authorization)?;
        let mut send = self.send.clone().ready().await?;
        let (response, mut body) = send.send_request(request, false)?;
        body.send_data(framed, true)?;
        let (parts, mut recv) = response.await?.into_parts();
        ensure!(
            parts.status == http::StatusCode::OK,
            "HTTP {}",
            parts.status
        );
        // A failed call may answer with headers only, the status among them.
        grpc_status(&parts.headers)?;
        let mut reply = BytesMut::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            recv.flow_control().release_capacity(chunk.len())?;
            reply.extend_from_slice(&chunk);
        }
        let trailers = recv.trailers().await?.context("reply without trailers")?;
        grpc_status(&trailers)?;
        unframe(reply.freeze())
    }
}

/// A TCP connection to `endpoint` (`http://host:port`) with Nagle off, and its authority.
pub async fn connect_tcp(endpoint: &str) -> Result<(tokio::net::TcpStream, String)> {
    let uri: http::Uri = endpoint
        .parse()
        .with_context(|| format!("invalid endpoint {endpoint:?}"))?;
    ensure!(
        uri.scheme_str() == Some("http"),
        "the h2 caller speaks cleartext HTTP/2 only; use --grpc-client tonic for {endpoint}"
    );
    let authority = uri
        .authority()
        .with_context(|| format!("endpoint {endpoint:?} has no host:port"))?
        .to_string();
    let tcp = tokio::net::TcpStream::connect(&authority)
        .await
        .with_context(|| format!("connecting to {endpoint}"))?;
    tcp.set_nodelay(true)?;
    Ok((tcp, authority))
}

/// The headers of a gRPC call of `path`; the message follows as the request body.
pub fn grpc_request(
    authority: &str,
    path: &str,
    authorization: &HeaderValue,
) -> Result<http::Request<()>> {
    Ok(http::Request::post(format!("http://{authority}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", authorization)
        .body(())?)
}

/// A call's status other than OK, as the error of the call, so that callers can count
/// failures by code.
#[derive(Debug)]
pub struct Status {
    pub code: tonic::Code,
    pub message: String,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gRPC status {:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for Status {}

/// `message` with gRPC's length prefix (uncompressed).
pub fn frame(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut out = BytesMut::with_capacity(5 + len);
    out.put_u8(0);
    out.put_u32(u32::try_from(len).expect("messages are far below 4 GiB"));
    message
        .encode(&mut out)
        .expect("the buffer was sized for the message");
    out.freeze()
}

/// The one message of a unary reply.
fn unframe<M: prost::Message + Default>(mut reply: Bytes) -> Result<M> {
    ensure!(reply.len() >= 5, "reply shorter than a gRPC message header");
    ensure!(reply.get_u8() == 0, "compressed replies are not expected");
    let len = reply.get_u32() as usize;
    ensure!(
        reply.len() == len,
        "reply holds {} bytes after its header, which announces {len}",
        reply.len()
    );
    Ok(M::decode(reply)?)
}

/// Fails with the call's [`Status`] if `headers` carry one other than OK.
pub fn grpc_status(headers: &http::HeaderMap) -> Result<()> {
    let Some(code) = headers.get("grpc-status") else {
        return Ok(());
    };
    let code = match code.to_str().ok().and_then(|c| c.parse::<i32>().ok()) {
        Some(0) => return Ok(()),
        Some(c) => tonic::Code::from_i32(c),
        None => bail!("unreadable grpc-status {code:?}"),
    };
    let message = headers
        .get("grpc-message")
        .map_or_else(String::new, |m| percent_decoded(m.as_bytes()));
    Err(Status { code, message }.into())
}

/// A `grpc-message` as written: the wire percent-encodes `%` and bytes outside printable ASCII.
fn percent_decoded(wire: &[u8]) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(wire.len());
    let mut i = 0;
    while i < wire.len() {
        let escaped = match wire.get(i..i + 3) {
            Some([b'%', h, l]) => hex(*h).zip(hex(*l)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(wire[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_proto::v1 as pb;

    #[test]
    fn messages_round_trip_through_the_framing() {
        let msg = pb::QueryRequest {
            collection: "tenants/a/collections/c".into(),
            vector: vec![0.5; 384],
            top_k: 10,
            ..Default::default()
        };
        let framed = frame(&msg);
        assert_eq!(framed[0], 0);
        assert_eq!(
            u32::from_be_bytes(framed[1..5].try_into().unwrap()) as usize,
            framed.len() - 5
        );
        let back: pb::QueryRequest = unframe(framed).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn truncated_or_overlong_replies_are_refused() {
        let framed = frame(&pb::QueryRequest {
            collection: "x".into(),
            ..Default::default()
        });
        assert!(unframe::<pb::QueryRequest>(framed.slice(..framed.len() - 1)).is_err());
        assert!(unframe::<pb::QueryRequest>(framed.slice(..3)).is_err());
        let mut longer = BytesMut::from(&framed[..]);
        longer.put_u8(1);
        assert!(unframe::<pb::QueryRequest>(longer.freeze()).is_err());
    }

    #[test]
    fn a_status_other_than_ok_is_an_error_with_its_message() {
        let mut h = http::HeaderMap::new();
        assert!(grpc_status(&h).is_ok());
        h.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(grpc_status(&h).is_ok());
        h.insert("grpc-status", HeaderValue::from_static("7"));
        h.insert("grpc-message", HeaderValue::from_static("denied"));
        let e = grpc_status(&h).unwrap_err();
        let status = e.downcast_ref::<Status>().unwrap();
        assert_eq!(status.code, tonic::Code::PermissionDenied);
        assert!(e.to_string().contains("denied"), "{e}");
    }

    #[test]
    fn status_messages_are_percent_decoded() {
        assert_eq!(
            percent_decoded(b"ef 100%25 too wide %E2%80%94 max 10"),
            "ef 100% too wide \u{2014} max 10"
        );
        assert_eq!(percent_decoded(b"odd %4 and %zz"), "odd %4 and %zz");
    }
}
