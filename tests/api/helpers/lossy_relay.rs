//! A TCP relay in front of the store that can lose the store's answers: every
//! request still reaches the store (which acts on it), but while answers are
//! lost the caller hears nothing and times out. What a store that dies right
//! after a write, or a network that drops the reply, looks like to the app.
//! It keeps every byte the app sent, to read the requests' heads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use picshelf::config::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{TestApp, garage, new_bucket, spawn_app_in};

/// An app on a bucket of its own whose store calls all pass through a relay.
pub async fn app_behind_relay(configure: impl FnOnce(&mut Settings) + 'static) -> (TestApp, LossyRelay) {
    let garage = garage::garage();
    let relay = LossyRelay::start(format!("127.0.0.1:{}", garage.s3_port())).await;
    let endpoint = relay.url.clone();
    let app = spawn_app_in(
        new_bucket(garage.clone()).await,
        move |settings| {
            settings.storage.s3.endpoint = endpoint;
            configure(settings);
        },
        None,
    )
    .await;
    (app, relay)
}

/// The bytes the app sent on one connection.
type Sent = Arc<Mutex<Vec<u8>>>;

pub struct LossyRelay {
    pub url: String,
    lose_answers: Arc<AtomicBool>,
    /// What the app sent, per connection.
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl LossyRelay {
    /// Relays 127.0.0.1:<free port> to `upstream` (host:port); answers pass.
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let url = format!("http://{}", listener.local_addr().expect("relay address"));
        let lose_answers = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (lose, record) = (lose_answers.clone(), sent.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else { continue };
                let connection = Arc::new(Mutex::new(Vec::new()));
                record.lock().unwrap().push(connection.clone());
                tokio::spawn(relay(client, server, lose.clone(), connection));
            }
        });
        Self { url, lose_answers, sent }
    }

    /// The heads (request line and headers) of every request that starts
    /// with `method` among what the app sent so far. Each connection is read
    /// request by request, skipping every body by its `content-length` (the
    /// SDK sends no chunked bodies), so a head right after a binary body counts.
    pub fn request_heads(&self, method: &str) -> Vec<String> {
        let start = format!("{method} /");
        let connections = self.sent.lock().unwrap().clone();
        let mut heads = Vec::new();
        for connection in connections {
            let sent = connection.lock().unwrap().clone();
            let mut rest = &sent[..];
            while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&rest[..end]).into_owned();
                let body_len = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if head.starts_with(&start) {
                    heads.push(head);
                }
                rest = &rest[(end + 4 + body_len).min(rest.len())..];
            }
        }
        heads
    }

    /// From now on the store's answers are dropped (or, with `false`, passed again).
    pub fn lose_answers(&self, lose: bool) {
        self.lose_answers.store(lose, Ordering::SeqCst);
    }
}

async fn relay(client: TcpStream, server: TcpStream, lose: Arc<AtomicBool>, sent: Sent) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
            sent.lock().unwrap().extend_from_slice(&buffer[..n]);
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match server_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) if !lose.load(Ordering::SeqCst) => {
                if client_write.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
        }
    }
    let _ = client_write.shutdown().await;
    requests.abort();
}
