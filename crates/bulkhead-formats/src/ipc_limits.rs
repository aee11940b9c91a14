//! Arrow's stream reader sizes its buffers from the lengths a stream declares: a four-byte
//! header claiming a 2 GiB message makes it allocate 2 GiB before reading a byte more. Import
//! streams come from the network, so every message's declared sizes are checked here, as the
//! bytes pass through on their way to the reader, before the reader can act on them.

/// Largest flatbuffer header of one IPC message; real ones are a few KiB.
const MAX_METADATA_BYTES: usize = 1024 * 1024;
const CONTINUATION: [u8; 4] = [0xFF; 4];

#[derive(Debug)]
enum Frame {
    /// Reading the length prefix: `0xFFFFFFFF` then the metadata length, or (older writers)
    /// the metadata length alone.
    Prefix(Vec<u8>),
    Metadata {
        remaining: usize,
        bytes: Vec<u8>,
    },
    Body {
        remaining: u64,
    },
    /// After the end-of-stream marker.
    End,
}

/// Follows an Arrow IPC stream's framing as its bytes arrive, failing as soon as a message
/// declares metadata over 1 MiB or a body over `max_body_bytes`.
#[derive(Debug)]
pub(crate) struct IpcFrames {
    frame: Frame,
    max_body_bytes: u64,
}

impl IpcFrames {
    pub(crate) fn new(max_body_bytes: usize) -> Self {
        Self {
            frame: Frame::Prefix(Vec::with_capacity(8)),
            max_body_bytes: max_body_bytes as u64,
        }
    }

    /// Takes the next bytes of the stream.
    pub(crate) fn check(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        while !data.is_empty() {
            match &mut self.frame {
                Frame::Prefix(prefix) => {
                    prefix.push(data[0]);
                    data = &data[1..];
                    let declared = match prefix.len() {
                        4 if prefix[..] == CONTINUATION => continue,
                        4 => i32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]),
                        8 => i32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]),
                        _ => continue,
                    };
                    self.frame = match usize::try_from(declared) {
                        Ok(0) => Frame::End,
                        Ok(n) if n <= MAX_METADATA_BYTES => Frame::Metadata {
                            remaining: n,
                            bytes: Vec::with_capacity(n),
                        },
                        _ => {
                            return Err(invalid(format!(
                                "Arrow message declares {declared} bytes of metadata, at most {MAX_METADATA_BYTES} are accepted"
                            )));
                        }
                    };
                }
                Frame::Metadata { remaining, bytes } => {
                    let take = (*remaining).min(data.len());
                    bytes.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    *remaining -= take;
                    if *remaining == 0 {
                        let body = arrow_ipc::root_as_message(bytes)
                            .map_err(|e| invalid(format!("invalid Arrow message header: {e}")))?
                            .bodyLength();
                        let body = u64::try_from(body)
                            .ok()
                            .filter(|b| *b <= self.max_body_bytes)
                            .ok_or_else(|| {
                                invalid(format!(
                                    "Arrow message declares a body of {body} bytes, at most {} are accepted per record batch",
                                    self.max_body_bytes
                                ))
                            })?;
                        self.frame = if body == 0 {
                            Frame::Prefix(Vec::with_capacity(8))
                        } else {
                            Frame::Body { remaining: body }
                        };
                    }
                }
                Frame::Body { remaining } => {
                    let take = (*remaining).min(data.len() as u64);
                    data = &data[take as usize..];
                    *remaining -= take;
                    if *remaining == 0 {
                        self.frame = Frame::Prefix(Vec::with_capacity(8));
                    }
                }
                Frame::End => return Ok(()),
            }
        }
        Ok(())
    }
}
