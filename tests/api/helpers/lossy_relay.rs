//! A TCP relay in front of the store that can lose the store's answers: every
//! request still reaches the store (which acts on it), but while answers are
//! lost the caller hears nothing and times out. What a store that dies right
//! after a write, or a network that drops the reply, looks like to the app.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct LossyRelay {
    pub url: String,
    lose_answers: Arc<AtomicBool>,
}

impl LossyRelay {
    /// Relays 127.0.0.1:<free port> to `upstream` (host:port); answers pass.
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let url = format!("http://{}", listener.local_addr().expect("relay address"));
        let lose_answers = Arc::new(AtomicBool::new(false));
        let lose = lose_answers.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else { continue };
                tokio::spawn(relay(client, server, lose.clone()));
            }
        });
        Self { url, lose_answers }
    }

    /// From now on the store's answers are dropped (or, with `false`, passed again).
    pub fn lose_answers(&self, lose: bool) {
        self.lose_answers.store(lose, Ordering::SeqCst);
    }
}

async fn relay(client: TcpStream, server: TcpStream, lose: Arc<AtomicBool>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
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
