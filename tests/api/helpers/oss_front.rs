//! A front that behaves like Aliyun OSS towards picshelf: it refuses every
//! path-style request (`Host` is the endpoint itself) with 403 and OSS's
//! `SecondLevelDomainForbidden` error, and passes virtual-hosted ones
//! (`<bucket>.s3.garage.localhost`) to the shared Garage, whose
//! `root_domain` knows them. Garage alone accepts both styles, so without
//! this front a virtual-hosted test would prove nothing. A real nginx
//! (installed by `scripts/install-test-tools`), one per test process.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::garage::{Garage, ROOT_DOMAIN, spawn_tied_to_this_process};

/// OSS's answer to a path-style request, as it sends it.
pub const PATH_STYLE_REFUSED: &str = "SecondLevelDomainForbidden";

struct Front {
    port: u16,
    _dir: tempfile::TempDir,
}

/// The front's port, started on first use in front of `garage`.
pub fn port(garage: &Garage) -> u16 {
    static FRONT: OnceLock<Front> = OnceLock::new();
    FRONT.get_or_init(|| start(garage.s3_port())).port
}

fn start(garage_port: u16) -> Front {
    let dir = tempfile::tempdir().expect("front dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let d = dir.path().display();
    let config = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_http_version 1.1;
    map $host $path_style {{
        "{ROOT_DOMAIN}" 1;
        default 0;
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /__path_style_refused {{
            internal;
            add_header x-oss-request-id "front-refused" always;
            default_type application/xml;
            return 403 '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>{PATH_STYLE_REFUSED}</Code>\n  <Message>Please use virtual hosted style to access.</Message>\n  <RequestId>front-refused</RequestId>\n  <HostId>{ROOT_DOMAIN}</HostId>\n</Error>\n';
        }}
        location / {{
            if ($path_style) {{
                rewrite ^ /__path_style_refused last;
            }}
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
            proxy_pass http://127.0.0.1:{garage_port};
        }}
    }}
}}
"#
    );
    let config_path = dir.path().join("nginx.conf");
    std::fs::write(&config_path, config).expect("front config");
    let mut command = Command::new(nginx_binary());
    command.arg("-p").arg(dir.path()).arg("-c").arg(&config_path).arg("-e").arg(dir.path().join("error.log"));
    command.stdout(Stdio::null()).stderr(Stdio::null());
    spawn_tied_to_this_process(command).expect("nginx starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the OSS-like front did not start: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Front { port, _dir: dir }
}

fn nginx_binary() -> String {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .map(str::to_owned)
        .unwrap_or_else(|| "nginx".into())
}
