//! A bare TCP client for what well-behaved HTTP clients will not do: lie
//! about lengths, stop halfway, hang up mid-upload.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
    /// The body as sent (`body` is its lossy text).
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for RawResponse {
    /// The head, and the body's length and start only (bodies are images).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let start: String = self.body.chars().take(200).collect();
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("head", &self.head)
            .field("body_len", &self.bytes.len())
            .field("body_start", &start)
            .finish()
    }
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
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let bytes = raw[end + 4..].to_vec();
    Some(RawResponse { status, head, body: String::from_utf8_lossy(&bytes).into_owned(), bytes })
}

fn complete(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
    // Interim answers, 204 and 304 have no body.
    let status = head.split(' ').nth(1).unwrap_or_default();
    if status.starts_with('1') || status == "204" || status == "304" {
        return true;
    }
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

    /// Connects and sends the head, the part's headers and the file's first
    /// `sent` bytes, then stops: an upload in progress (or a stalled one).
    pub async fn begin(&self, port: u16, sent: usize) -> TcpStream {
        let mut stream = connect(port).await;
        send(&mut stream, self.head_for_this().as_bytes()).await.unwrap();
        send(&mut stream, &self.start).await.unwrap();
        send(&mut stream, &self.file[..sent]).await.unwrap();
        stream
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

/// Answers to requests sent back to back on one connection, read with their
/// framing (a HEAD answer has no body, whatever its `Content-Length` says).
pub async fn read_pipelined<R: AsyncRead + Unpin>(
    stream: &mut R,
    methods: &[&str],
    timeout: Duration,
) -> Result<Vec<RawResponse>, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut raw = Vec::new();
    let mut responses = Vec::new();
    let mut buf = [0u8; 16384];
    for method in methods {
        loop {
            if let Some((response, used)) = parse_one(&raw, method)? {
                raw.drain(..used);
                responses.push(response);
                break;
            }
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Ok(Ok(0)) => return Err(format!("connection closed after {} answers: {responses:?}", responses.len())),
                Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => return Err(format!("read failed after {} answers: {e}", responses.len())),
                Err(_) => return Err(format!("timed out after {} answers: {responses:?}", responses.len())),
            }
        }
    }
    // Nothing may follow the last answer.
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
        raw.extend_from_slice(&buf[..n]);
    }
    if raw.is_empty() {
        Ok(responses)
    } else {
        Err(format!("unexpected bytes after the answers: {:?}", String::from_utf8_lossy(&raw)))
    }
}

/// One whole response at the start of `raw`, and how many bytes it took.
fn parse_one(raw: &[u8], method: &str) -> Result<Option<(RawResponse, usize)>, String> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or(format!("not a response: {head:?}"))?;
    let length = head
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .map(|v| v.parse::<usize>().map_err(|e| format!("{v}: {e}")))
        .transpose()?;
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Err(format!("unexpected chunked answer: {head}"));
    }
    let body_len = if method == "HEAD" || status == 304 || status == 204 { 0 } else { length.unwrap_or(0) };
    let start = end + 4;
    if raw.len() < start + body_len {
        return Ok(None);
    }
    let bytes = raw[start..start + body_len].to_vec();
    Ok(Some((
        RawResponse { status, head, body: String::from_utf8_lossy(&bytes).into_owned(), bytes },
        start + body_len,
    )))
}
