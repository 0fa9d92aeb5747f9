//! A bare TCP client for what well-behaved HTTP clients will not do: lie
//! about lengths, stop halfway, hang up mid-upload.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

pub async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).await.expect("connect")
}

/// Reads whatever the server sends until it closes or `timeout` passes;
/// `None` if nothing at all came back.
pub async fn read_response<R: AsyncRead + Unpin>(stream: &mut R, timeout: Duration) -> Option<RawResponse> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                raw.extend_from_slice(&buf[..n]);
                if complete(&raw) {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(RawResponse { status, head: head.to_owned(), body: body.to_owned() })
}

fn complete(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
    head.lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
        .and_then(Result::ok)
        .is_some_and(|len| body.len() >= len)
}

/// A multipart upload of one `file` field, in the three pieces a misbehaving
/// client sends (or does not send) separately.
pub struct RawUpload {
    pub start: Vec<u8>,
    pub file: Vec<u8>,
    pub end: Vec<u8>,
}

impl RawUpload {
    const BOUNDARY: &'static str = "picshelf-raw-boundary";

    pub fn new(file: &[u8]) -> Self {
        let boundary = Self::BOUNDARY;
        Self {
            start: format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .into_bytes(),
            file: file.to_vec(),
            end: format!("\r\n--{boundary}--\r\n").into_bytes(),
        }
    }

    /// The whole body's length.
    pub fn len(&self) -> usize {
        self.start.len() + self.file.len() + self.end.len()
    }

    /// The request head of `POST /main/upload` declaring `content_length` bytes.
    pub fn head_with_length(content_length: usize) -> String {
        Self::head(&format!("Content-Length: {content_length}"))
    }

    /// The request head of `POST /main/upload` with a chunked body.
    pub fn head_chunked() -> String {
        Self::head("Transfer-Encoding: chunked")
    }

    /// The request head declaring this upload's true length.
    pub fn head_for_this(&self) -> String {
        Self::head_with_length(self.len())
    }

    fn head(framing: &str) -> String {
        format!(
            "POST /main/upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary={}\r\n{framing}\r\n\r\n",
            Self::BOUNDARY
        )
    }
}

pub async fn send(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}
