//! HTTP/1.1 pipelining, one request at a time.
//!
//! actix-http (3.20) decodes pipelined requests ahead of answering them, and
//! its codec encodes each response head with the flags of the request it
//! decoded *last*: a HEAD decoded behind a GET makes the GET's body vanish, a
//! GET decoded behind a HEAD makes the HEAD answer with a body (or break the
//! connection). [`OneAtATime`] sits between the socket and actix-http and
//! hands it the next request only once the response head to the previous one
//! has been written, so every response is encoded with its own request's flags.
//!
//! It follows the framing of both directions the way actix-http does
//! (`httparse` heads, `Content-Length` or `chunked` bodies, no body for HEAD,
//! 1xx, 204 and 304) and only ever delays bytes, never changes them. What it
//! does not follow (an upgrade, a malformed head or chunk) switches it to
//! passing bytes straight through; actix-http then answers that error itself
//! and closes the connection.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// actix-http refuses heads with more headers than this.
const MAX_HEADERS: usize = 96;
/// A head that has not ended within this many bytes is not ours to follow.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// How a message body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked(Chunk),
    /// Until the connection closes (a response without a length).
    UntilClose,
}

/// actix-http's chunked decoder states, with the same tolerance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    SizeFirst,
    SizeRest { size: u64 },
    SizeLws { size: u64 },
    Extension { size: u64 },
    SizeLf { size: u64 },
    Data { remaining: u64 },
    DataCr,
    DataLf,
    Trailer,
    TrailerLf,
    EndCr,
    EndLf,
}

/// What a body did with the bytes it was offered.
#[derive(Debug, PartialEq, Eq)]
enum Consumed {
    /// Took them all (or as many as there were) and wants more.
    More(usize),
    /// Ended after this many.
    Ended(usize),
    /// Broke its framing.
    Broken,
}

impl Body {
    fn consume(&mut self, bytes: &[u8]) -> Consumed {
        match self {
            Body::UntilClose => Consumed::More(bytes.len()),
            Body::Length(remaining) => {
                let n = (*remaining).min(bytes.len() as u64);
                *remaining -= n;
                if *remaining == 0 { Consumed::Ended(n as usize) } else { Consumed::More(n as usize) }
            }
            Body::Chunked(state) => {
                let mut at = 0;
                while at < bytes.len() {
                    if let Chunk::Data { remaining } = *state {
                        let n = remaining.min((bytes.len() - at) as u64);
                        at += n as usize;
                        *state = if remaining == n { Chunk::DataCr } else { Chunk::Data { remaining: remaining - n } };
                        continue;
                    }
                    match next_chunk_state(*state, bytes[at]) {
                        Some(Some(next)) => *state = next,
                        Some(None) => return Consumed::Ended(at + 1),
                        None => return Consumed::Broken,
                    }
                    at += 1;
                }
                Consumed::More(at)
            }
        }
    }
}

fn hex(byte: u8) -> Option<u64> {
    (byte as char).to_digit(16).map(u64::from)
}

/// One byte of chunk framing: the next state, `Some(None)` at the very end,
/// `None` for what actix-http would refuse.
fn next_chunk_state(state: Chunk, byte: u8) -> Option<Option<Chunk>> {
    use Chunk::*;
    let next = match (state, byte) {
        (SizeFirst, b) => SizeRest { size: hex(b)? },
        (SizeRest { size }, b'\t' | b' ') => SizeLws { size },
        (SizeRest { size } | SizeLws { size }, b';') => Extension { size },
        (SizeRest { size } | SizeLws { size } | Extension { size }, b'\r') => SizeLf { size },
        (SizeRest { size }, b) => SizeRest { size: size.checked_mul(16)?.checked_add(hex(b)?)? },
        (SizeLws { size }, b'\t' | b' ') => SizeLws { size },
        (Extension { .. }, 0x00..=0x08 | 0x0a..=0x1f | 0x7f) => return None,
        (Extension { size }, _) => Extension { size },
        (SizeLf { size: 0 }, b'\n') => EndCr,
        (SizeLf { size }, b'\n') => Data { remaining: size },
        (DataCr, b'\r') => DataLf,
        (DataLf, b'\n') => SizeFirst,
        (EndCr, b'\r') => EndLf,
        (Trailer, b'\r') => TrailerLf,
        (EndCr | Trailer, _) => Trailer,
        (TrailerLf, b'\n') => EndCr,
        (EndLf, b'\n') => return Some(None),
        _ => return None,
    };
    Some(Some(next))
}

/// `Content-Length` and `Transfer-Encoding` as actix-http reads them;
/// `None` for what it would refuse.
fn length_and_chunked(headers: &[httparse::Header<'_>], http11: bool) -> Option<(Option<u64>, bool)> {
    let (mut length, mut chunked, mut seen_te) = (None, false, false);
    for header in headers {
        let value = std::str::from_utf8(header.value).ok()?.trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            if length.is_some() || value.starts_with('+') {
                return None;
            }
            length = Some(value.parse::<u64>().ok()?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") && http11 {
            if seen_te {
                return None;
            }
            seen_te = true;
            chunked = value.eq_ignore_ascii_case("chunked");
            if !chunked && !value.eq_ignore_ascii_case("identity") {
                return None;
            }
        }
    }
    Some((length, chunked))
}

/// A request head's body framing (`None` for no body), or `Err` for what is
/// not followed: an upgrade, `CONNECT`, or framing actix-http refuses.
fn request_body(request: &httparse::Request<'_, '_>) -> Result<Option<Body>, ()> {
    let upgrade = request.headers.iter().any(|h| h.name.eq_ignore_ascii_case("upgrade"));
    let connect = request.method.is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"));
    let (length, chunked) = length_and_chunked(request.headers, request.version == Some(1)).ok_or(())?;
    if upgrade || connect || (chunked && length.is_some()) {
        return Err(());
    }
    Ok(match (chunked, length) {
        (true, _) => Some(Body::Chunked(Chunk::SizeFirst)),
        (false, Some(0) | None) => None,
        (false, Some(length)) => Some(Body::Length(length)),
    })
}

/// The reading side: where the stream of requests stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// Waiting for a whole request head (held while a response is owed).
    Head,
    /// Passing the rest of the head, then the body if there is one.
    Head2 {
        remaining: usize,
        body: Option<Body>,
    },
    Body(Body),
}

/// The writing side: where the stream of responses stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writing {
    Head,
    Body(Body),
}

pub struct OneAtATime<T> {
    inner: T,
    /// Read from the socket, not yet passed on.
    pending: BytesMut,
    reading: Reading,
    /// Requests passed on whose response head is still owed: whether each was a HEAD.
    owed: VecDeque<bool>,
    writing: Writing,
    /// The response head being written, until it is whole.
    response_head: Vec<u8>,
    /// Not following the framing any more: everything passes.
    passthrough: bool,
    eof: bool,
    reader: Option<Waker>,
}

impl<T> OneAtATime<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: BytesMut::new(),
            reading: Reading::Head,
            owed: VecDeque::new(),
            writing: Writing::Head,
            response_head: Vec::new(),
            passthrough: false,
            eof: false,
            reader: None,
        }
    }

    fn give_up(&mut self) {
        self.passthrough = true;
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }

    /// Takes up to `limit` (> 0) pending bytes to pass on: `Some(0)` while the
    /// next request must wait for a response head, `None` when more bytes
    /// must be read first.
    fn take(&mut self, limit: usize) -> Option<usize> {
        loop {
            if self.passthrough {
                return (!self.pending.is_empty()).then(|| limit.min(self.pending.len()));
            }
            match self.reading {
                Reading::Head if !self.owed.is_empty() => return Some(0),
                Reading::Head => {
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut request = httparse::Request::new(&mut headers);
                    match request.parse(&self.pending) {
                        Ok(httparse::Status::Complete(len)) => match request_body(&request) {
                            Ok(body) => {
                                let is_head = request.method.is_some_and(|m| m.eq_ignore_ascii_case("HEAD"));
                                self.owed.push_back(is_head);
                                self.reading = Reading::Head2 { remaining: len, body };
                            }
                            Err(()) => self.give_up(),
                        },
                        Ok(httparse::Status::Partial) if self.pending.len() < MAX_HEAD_BYTES && !self.eof => {
                            return None;
                        }
                        _ => self.give_up(),
                    }
                }
                Reading::Head2 { remaining: 0, body } => {
                    self.reading = body.map_or(Reading::Head, Reading::Body);
                }
                Reading::Head2 { remaining, body } => {
                    let n = remaining.min(limit);
                    self.reading = Reading::Head2 { remaining: remaining - n, body };
                    return Some(n);
                }
                Reading::Body(mut body) => {
                    if self.pending.is_empty() {
                        return None;
                    }
                    let end = limit.min(self.pending.len());
                    match body.consume(&self.pending[..end]) {
                        Consumed::More(n) => {
                            self.reading = Reading::Body(body);
                            return Some(n);
                        }
                        Consumed::Ended(n) => {
                            self.reading = Reading::Head;
                            return Some(n);
                        }
                        Consumed::Broken => self.give_up(),
                    }
                }
            }
        }
    }

    /// Follows the responses being written; a whole response head (other than
    /// an interim `1xx`) settles what is owed to the oldest request.
    fn wrote(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.passthrough {
            match self.writing {
                Writing::Body(mut body) => match body.consume(bytes) {
                    Consumed::More(n) => {
                        self.writing = Writing::Body(body);
                        bytes = &bytes[n..];
                    }
                    Consumed::Ended(n) => {
                        self.writing = Writing::Head;
                        bytes = &bytes[n..];
                    }
                    Consumed::Broken => self.give_up(),
                },
                Writing::Head => {
                    let before = self.response_head.len();
                    self.response_head.extend_from_slice(bytes);
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut response = httparse::Response::new(&mut headers);
                    let len = match response.parse(&self.response_head) {
                        Ok(httparse::Status::Complete(len)) => len,
                        Ok(httparse::Status::Partial) if self.response_head.len() < MAX_HEAD_BYTES => return,
                        _ => return self.give_up(),
                    };
                    bytes = &bytes[len - before..];
                    let status = response.code.unwrap_or_default();
                    let framing = length_and_chunked(response.headers, response.version == Some(1));
                    self.response_head.clear();
                    if status == 101 {
                        return self.give_up();
                    }
                    if (100..200).contains(&status) {
                        continue;
                    }
                    let Some(is_head) = self.owed.pop_front() else { return self.give_up() };
                    let body = match framing {
                        _ if is_head || status == 204 || status == 304 => None,
                        Some((_, true)) => Some(Body::Chunked(Chunk::SizeFirst)),
                        Some((Some(0), false)) => None,
                        Some((Some(length), false)) => Some(Body::Length(length)),
                        Some((None, false)) => Some(Body::UntilClose),
                        None => return self.give_up(),
                    };
                    self.writing = body.map_or(Writing::Head, Writing::Body);
                    // The next request may be decoded now: this head is encoded.
                    if let Some(reader) = self.reader.take() {
                        reader.wake();
                    }
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for OneAtATime<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            match this.take(buf.remaining()) {
                Some(0) => {
                    // Held until the response head to the previous request is written.
                    this.reader = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Some(n) => {
                    buf.put_slice(&this.pending[..n]);
                    this.pending.advance(n);
                    return Poll::Ready(Ok(()));
                }
                None if this.eof => return Poll::Ready(Ok(())),
                None => {}
            }
            // More bytes are needed: read them from the socket.
            this.pending.reserve(READ_CHUNK);
            let spare = this.pending.spare_capacity_mut();
            let room = READ_CHUNK.min(spare.len());
            let mut read = ReadBuf::uninit(&mut spare[..room]);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    this.eof = n == 0;
                    // SAFETY: the read just initialised `n` bytes of the spare capacity.
                    unsafe { this.pending.set_len(this.pending.len() + n) };
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for OneAtATime<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.wrote(&buf[..n]);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    /// A connection whose client has written `requests`: its server side.
    async fn connection(requests: &str) -> (tokio::io::DuplexStream, OneAtATime<tokio::io::DuplexStream>) {
        let (mut client, server) = duplex(1 << 16);
        client.write_all(requests.as_bytes()).await.unwrap();
        (client, OneAtATime::new(server))
    }

    /// What one read of the server side gets, or `None` if it is held.
    async fn read_once(io: &mut OneAtATime<tokio::io::DuplexStream>) -> Option<String> {
        let mut buf = vec![0; 4096];
        match tokio::time::timeout(std::time::Duration::from_millis(100), io.read(&mut buf)).await {
            Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn the_next_request_waits_for_the_response_head_to_the_previous_one() {
        let get = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let head = "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let (_client, mut server) = connection(&format!("{get}{head}{get}")).await;

        assert_eq!(read_once(&mut server).await.as_deref(), Some(get));
        assert_eq!(read_once(&mut server).await, None, "held until the GET is answered");
        // The GET's head and part of its body: the HEAD may now be decoded.
        server.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01234").await.unwrap();
        assert_eq!(read_once(&mut server).await.as_deref(), Some(head));
        // The rest of the GET's body is not the HEAD's answer yet.
        server.write_all(b"56789").await.unwrap();
        assert_eq!(read_once(&mut server).await, None);
        // The HEAD's answer has no body, whatever its length says.
        server.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n").await.unwrap();
        assert_eq!(read_once(&mut server).await.as_deref(), Some(get));
    }

    #[tokio::test]
    async fn bodies_pass_without_waiting_and_chunked_ones_end_where_they_end() {
        let post = "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        let chunks = "5;ext=1\r\nhello\r\n0\r\nTrailer: t\r\n\r\n";
        let next = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        let (_client, mut server) = connection(&format!("{post}{chunks}{next}")).await;

        assert_eq!(read_once(&mut server).await.as_deref(), Some(post));
        assert_eq!(read_once(&mut server).await.as_deref(), Some(chunks));
        assert_eq!(read_once(&mut server).await, None);
        server.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.unwrap();
        assert_eq!(read_once(&mut server).await, None, "an interim answer does not count");
        server.write_all(b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n").await.unwrap();
        assert_eq!(read_once(&mut server).await.as_deref(), Some(next));
    }

    #[tokio::test]
    async fn a_length_body_passes_exactly_and_what_is_not_followed_passes_through() {
        let post = "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n";
        let (_client, mut server) = connection(&format!("{post}abcGET / HTTP/1.1\r\n\r\n")).await;
        assert_eq!(read_once(&mut server).await.as_deref(), Some(post));
        assert_eq!(read_once(&mut server).await.as_deref(), Some("abc"));
        assert_eq!(read_once(&mut server).await, None);

        let smuggled = "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcdGET / HTTP/1.1\r\n\r\n";
        let (_client, mut server) = connection(smuggled).await;
        assert_eq!(read_once(&mut server).await.as_deref(), Some(smuggled), "actix-http refuses it itself");
    }

    #[test]
    fn chunk_framing_matches_actix() {
        let mut body = Body::Chunked(Chunk::SizeFirst);
        assert_eq!(body.consume(b"a\r\n0123456789\r\n0\r\n\r\nnext"), Consumed::Ended(20));
        let mut body = Body::Chunked(Chunk::SizeFirst);
        assert_eq!(body.consume(b"A \t;x=\"y\"\r\n"), Consumed::More(11));
        assert_eq!(body.consume(b"0123456789\r\n"), Consumed::More(12));
        assert_eq!(body.consume(b"0\r\nA: b\r\nC: d\r\n\r\n"), Consumed::Ended(17));
        for broken in [&b"x\r\n"[..], b"5\n", b"5\r\nhello\n", b"0;\x01\r\n", b"fffffffffffffffff\r\n"] {
            assert_eq!(Body::Chunked(Chunk::SizeFirst).consume(broken), Consumed::Broken, "{broken:?}");
        }
    }
}
