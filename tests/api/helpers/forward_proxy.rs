//! A real forward proxy on loopback (Debian's tinyproxy, installed by
//! `scripts/install-test-tools`), one per test process, that counts the
//! requests it relayed from its log.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::garage::spawn_tied_to_this_process;

pub struct ForwardProxy {
    pub url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl ForwardProxy {
    /// How many requests it has relayed so far (its log's request lines).
    pub fn relayed(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("]: Request (file descriptor"))
            .count()
    }
}

pub fn forward_proxy() -> &'static ForwardProxy {
    static PROXY: OnceLock<ForwardProxy> = OnceLock::new();
    PROXY.get_or_init(start)
}

fn start() -> ForwardProxy {
    let dir = tempfile::tempdir().expect("proxy dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let log = dir.path().join("tinyproxy.log");
    let config = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile \"{}\"\nLogLevel Connect\nPidFile \"{}\"\n\
         MaxClients 200\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
        log.display(),
        dir.path().join("tinyproxy.pid").display()
    );
    let config_path = dir.path().join("tinyproxy.conf");
    std::fs::write(&config_path, config).expect("proxy config");
    let mut command = Command::new("tinyproxy");
    command.arg("-d").arg("-c").arg(&config_path).stdout(Stdio::null()).stderr(Stdio::null());
    spawn_tied_to_this_process(command).expect("tinyproxy starts (scripts/install-test-tools installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tinyproxy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    ForwardProxy { url: format!("http://127.0.0.1:{port}"), log, _dir: dir }
}
