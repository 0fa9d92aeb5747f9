//! Request bodies and byte accounting shared by the load test and the benchmark.

use reqwest::header::{HeaderMap, HeaderValue};

/// A multipart/form-data body with one file field, built in one buffer so that
/// its length is known (sent with `Content-Length`, as browsers and JMeter do).
pub struct Multipart {
    pub content_type: HeaderValue,
    pub body: Vec<u8>,
}

/// The boundary of every multipart body here (never appears in the noise by
/// chance in practice; picshelf parses by boundary, not by length).
pub const BOUNDARY: &str = "picshelf-loadtest-7d3f6a2c91e04b58";

/// Opening part of a body: everything before the file's bytes.
pub fn multipart_head(field: &str, file_name: &str, content_type: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
}

/// Closing part of a body: everything after the file's bytes.
pub fn multipart_tail() -> String {
    format!("\r\n--{BOUNDARY}--\r\n")
}

pub fn multipart_content_type() -> HeaderValue {
    HeaderValue::from_str(&format!("multipart/form-data; boundary={BOUNDARY}")).expect("a valid header value")
}

/// `field` = the file, with `write_file` appending the file's bytes into the body.
pub fn multipart(
    field: &str,
    file_name: &str,
    content_type: &str,
    file_len: usize,
    write_file: impl FnOnce(&mut Vec<u8>),
) -> Multipart {
    let head = multipart_head(field, file_name, content_type);
    let tail = multipart_tail();
    let mut body = Vec::with_capacity(head.len() + file_len + tail.len());
    body.extend_from_slice(head.as_bytes());
    write_file(&mut body);
    body.extend_from_slice(tail.as_bytes());
    Multipart { content_type: multipart_content_type(), body }
}

/// Bytes of a header block on the wire: `name: value\r\n` per header and the
/// blank line that ends the block.
pub fn header_block_len(headers: &HeaderMap) -> u64 {
    headers.iter().map(|(name, value)| (name.as_str().len() + 2 + value.len() + 2) as u64).sum::<u64>() + 2
}

/// Bytes of a response's status line and headers, as HTTP/1.1 sends them.
pub fn response_head_len(status: reqwest::StatusCode, headers: &HeaderMap) -> u64 {
    // "HTTP/1.1 200 OK\r\n"
    let reason = status.canonical_reason().unwrap_or("");
    (9 + 3 + 1 + reason.len() + 2) as u64 + header_block_len(headers)
}

/// Bytes of a request's request line and headers as HTTP/1.1 sends them:
/// the request's own headers plus `Host` and `Content-Length`, which the
/// client adds. Every header the client would add by itself (User-Agent,
/// Accept, Accept-Encoding) is set explicitly by the callers, so this is exact.
pub fn request_head_len(request: &reqwest::Request) -> u64 {
    let url = request.url();
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let line = request.method().as_str().len() + 1 + target.len() + 1 + 8 + 2;
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    let mut len = line as u64 + (6 + host.len() + 2) as u64 + header_block_len(request.headers());
    if let Some(body_len) = request.body().and_then(|b| b.as_bytes()).map(<[u8]>::len) {
        len += ("content-length: ".len() + body_len.to_string().len() + 2) as u64;
    }
    len
}

/// Body length of a request whose body is in memory (0 without one).
pub fn request_body_len(request: &reqwest::Request) -> u64 {
    request.body().and_then(|b| b.as_bytes()).map_or(0, |b| b.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_body_is_head_file_tail() {
        let m = multipart("file", "a.png", "image/png", 3, |b| b.extend_from_slice(b"abc"));
        let text = String::from_utf8(m.body).unwrap();
        assert!(text.starts_with(&format!("--{BOUNDARY}\r\n")));
        assert!(text.contains("name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nabc\r\n"));
        assert!(text.ends_with(&format!("--{BOUNDARY}--\r\n")));
    }

    #[test]
    fn head_lengths_count_every_byte() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("image/png"));
        // "content-type: image/png\r\n" + "\r\n"
        assert_eq!(header_block_len(&headers), 25 + 2);
        // "HTTP/1.1 200 OK\r\n"
        assert_eq!(response_head_len(reqwest::StatusCode::OK, &HeaderMap::new()), 17 + 2);
        let client = reqwest::Client::builder().build().unwrap();
        let request = client.post("http://127.0.0.1:8080/main/upload").body(vec![0u8; 10]).build().unwrap();
        // "POST /main/upload HTTP/1.1\r\n" + "host: 127.0.0.1:8080\r\n" + "content-length: 10\r\n" + "\r\n"
        assert_eq!(request_head_len(&request), 28 + 22 + 20 + 2);
    }
}
