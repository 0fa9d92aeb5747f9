//! Settings in layers: `config/default.toml`, then `config/<env>.toml`, then the
//! untracked `instance/config.toml`, then `PICSHELF__SECTION__KEY` environment
//! variables. The repository's `config/*.toml` are compiled into the binary
//! and come first, so a bare `picshelf` starts from any directory; the same
//! files on disk, when there, are laid over them. The merged result is
//! validated once at startup; an error names every key that is wrong. Secrets
//! are [`SecretString`]s: `Debug` and the printed configuration show them
//! redacted.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

/// Environment variable that picks the environment (`dev` when unset).
pub const ENV_VAR: &str = "PICSHELF_ENV";
/// Environment variable naming the directory of `default.toml` and friends.
pub const CONFIG_DIR_VAR: &str = "PICSHELF_CONFIG_DIR";
/// Environment variable naming the directory of the untracked `config.toml`.
pub const INSTANCE_DIR_VAR: &str = "PICSHELF_INSTANCE_DIR";
/// Prefix of per-key override variables: `PICSHELF__SERVER__PORT=9000`.
pub const OVERRIDE_PREFIX: &str = "PICSHELF";

/// The repository's `config/` files, compiled in: the first layers.
const EMBEDDED_DEFAULT: &str = include_str!("../config/default.toml");

fn embedded_environment_file(environment: Environment) -> &'static str {
    match environment {
        Environment::Dev => include_str!("../config/dev.toml"),
        Environment::Test => include_str!("../config/test.toml"),
        Environment::Prod => include_str!("../config/prod.toml"),
    }
}

/// S3 refuses single-request copies above 5 GiB; uploads go through one.
const S3_MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
const S3_MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Dev,
    Test,
    Prod,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Test => "test",
            Self::Prod => "prod",
        }
    }

    /// Reads `PICSHELF_ENV`; unset means `dev`.
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var(ENV_VAR) {
            Ok(value) => value.parse(),
            Err(std::env::VarError::NotPresent) => Ok(Self::Dev),
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::invalid(ENV_VAR, "is not valid UTF-8")),
        }
    }
}

impl FromStr for Environment {
    type Err = ConfigError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "dev" | "development" => Ok(Self::Dev),
            "test" => Ok(Self::Test),
            "prod" | "production" => Ok(Self::Prod),
            other => Err(ConfigError::invalid(ENV_VAR, format!("is {other:?}; expected one of dev, test, prod"))),
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One setting that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot load settings: {0}")]
    Load(#[from] config::ConfigError),
    /// Every invalid key, so one restart fixes them all.
    #[error("invalid settings: {}", .0.iter().map(Problem::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![Problem { key: key.into(), message: message.into() }])
    }

    /// The keys named by an `Invalid` error.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Self::Invalid(problems) => problems.iter().map(|p| p.key.as_str()).collect(),
            Self::Load(_) => Vec::new(),
        }
    }
}

/// Collects problems as validation walks the settings.
#[derive(Default)]
struct Checks(Vec<Problem>);

impl Checks {
    fn check(&mut self, ok: bool, key: &str, message: impl Into<String>) {
        if !ok {
            self.0.push(Problem { key: key.to_owned(), message: message.into() });
        }
    }

    fn finish(self) -> Result<(), ConfigError> {
        if self.0.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(self.0)) }
    }
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// `info`, or `info,picshelf=debug,aws_smithy_runtime=warn`: levels only, no bare words.
fn is_log_filter(filter: &str) -> bool {
    let is_level = |level: &str| LEVELS.contains(&level.trim().to_ascii_lowercase().as_str());
    !filter.trim().is_empty()
        && filter.split(',').all(|directive| match directive.split_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(directive),
        })
        && tracing_subscriber::EnvFilter::try_new(filter).is_ok()
}

/// Where the layers live.
#[derive(Clone, Debug)]
pub struct Sources {
    pub config_dir: PathBuf,
    pub instance_dir: PathBuf,
}

impl Sources {
    /// `PICSHELF_CONFIG_DIR` (default `config`) and `PICSHELF_INSTANCE_DIR` (default `instance`).
    pub fn from_env() -> Self {
        let dir =
            |var: &str, default: &str| std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
        Self { config_dir: dir(CONFIG_DIR_VAR, "config"), instance_dir: dir(INSTANCE_DIR_VAR, "instance") }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Filled in from `PICSHELF_ENV`, not from the files.
    #[serde(skip_deserializing, default = "default_environment")]
    pub environment: Environment,
    pub server: ServerSettings,
    pub upload: UploadSettings,
    pub variants: VariantSettings,
    pub storage: StorageSettings,
    pub security: SecuritySettings,
    pub log: LogSettings,
}

fn default_environment() -> Environment {
    Environment::Dev
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub public_url: String,
    pub shutdown_timeout_secs: u64,
    /// Peers whose forwarding headers (`Forwarded`, `X-Forwarded-*`) are believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// Resized variants (`?width=W`), made on first request and stored.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSettings {
    /// The widths a variant may have; any other is a 400 naming these.
    pub widths: Vec<u32>,
    /// Renderings at once; 0 means one per core.
    pub max_concurrent: usize,
    /// Renderings waiting for a slot; beyond it, 503.
    pub max_queue: usize,
    /// A variant request waits at most this long for its rendering (503 after).
    pub timeout_ms: u64,
    /// Largest decoded picture (after JPEG's scaled decoding), in pixels.
    pub max_decoded_pixels: u64,
    /// Most memory one decoder may allocate.
    pub max_decode_bytes: u64,
    /// Largest original read to make a variant.
    pub max_source_bytes: u64,
}

impl VariantSettings {
    /// `max_concurrent` with 0 resolved to the number of cores.
    pub fn slots(&self) -> usize {
        if self.max_concurrent > 0 {
            self.max_concurrent
        } else {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSettings {
    pub max_file_bytes: u64,
    pub max_files: usize,
    pub max_request_bytes: u64,
    pub max_pixels: u64,
    /// Upload requests handled at once; more get a 503.
    pub max_concurrent: usize,
    /// An upload body that sends nothing for this long is abandoned (408).
    pub idle_timeout_secs: u64,
    /// An upload request may take at most this long in all (408).
    pub max_duration_secs: u64,
    /// Remove location, camera and personal metadata from every file.
    pub strip_metadata: bool,
    /// TIFF and AVIF are stripped in memory: at most this large (413 beyond) …
    pub max_rewrite_bytes: u64,
    /// … and all of them held at once at most this much (503 beyond).
    pub rewrite_memory_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Fs,
    S3,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub backend: Backend,
    /// `/readyz` waits at most this long for the store.
    pub ready_timeout_ms: u64,
    /// How often leftovers of interrupted uploads are looked for (also at start-up).
    pub sweep_interval_secs: u64,
    /// Leftovers older than this are removed; no live upload is ever this old.
    pub stale_upload_secs: u64,
    pub fs: FsSettings,
    pub s3: S3Settings,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FsSettings {
    pub root: PathBuf,
    /// Longest wait for one disk operation (a hung network filesystem gives a 503).
    pub operation_timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub endpoint: String,
    pub path_style: bool,
    pub access_key_id: String,
    #[serde(serialize_with = "redacted")]
    pub secret_access_key: SecretString,
    pub part_size_bytes: u64,
    pub parts_in_flight: usize,
    pub connect_timeout_ms: u64,
    /// Total deadline of one store call, retries included; calls that carry a
    /// body get `min_transfer_bytes_per_sec` on top for their bytes.
    pub operation_timeout_ms: u64,
    pub min_transfer_bytes_per_sec: u64,
    pub max_attempts: u32,
    /// `host=address` pairs; the host exact or `*.suffix`.
    pub resolve: Vec<String>,
    /// "" = from the environment, "none" = directly, else a proxy URL.
    #[serde(serialize_with = "redacted_url")]
    pub proxy: SecretString,
    pub copy_threshold_bytes: u64,
    pub copy_part_bytes: u64,
    pub redirect_downloads: bool,
    pub presign_ttl_secs: u64,
    pub payload_signing: PayloadSigning,
}

/// Whether the SHA-256 of each request body (a single-part upload, a part, a
/// variant) goes into its SigV4 signature, as `storage.s3.payload_signing` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadSigning {
    /// Signed over plain HTTP, where it is the only check that the store got
    /// the bytes sent; not over HTTPS, where TLS checks them already.
    Auto,
    Always,
    Never,
}

impl PayloadSigning {
    /// As the setting spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Always => "always",
            Self::Never => "never",
        }
    }
}

/// How the S3 client reaches the store, as `storage.s3.proxy` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxySetting {
    FromEnvironment,
    Disabled,
    Url(String),
}

impl S3Settings {
    pub fn proxy_setting(&self) -> ProxySetting {
        match self.proxy.expose_secret().trim() {
            "" => ProxySetting::FromEnvironment,
            "none" => ProxySetting::Disabled,
            url => ProxySetting::Url(url.to_owned()),
        }
    }

    /// Whether request bodies are hashed into their signatures.
    pub fn signs_payloads(&self) -> bool {
        match self.payload_signing {
            PayloadSigning::Always => true,
            PayloadSigning::Never => false,
            // No endpoint means AWS, over HTTPS.
            PayloadSigning::Auto => {
                let endpoint = self.endpoint.trim();
                !(endpoint.is_empty() || endpoint.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")))
            }
        }
    }

    /// Whether requests go through a proxy (roughly, for the environment's:
    /// `NO_PROXY` may still exempt the endpoint).
    pub fn uses_proxy(&self) -> bool {
        match self.proxy_setting() {
            ProxySetting::Url(_) => true,
            ProxySetting::Disabled => false,
            ProxySetting::FromEnvironment => {
                ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
                    .iter()
                    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
            }
        }
    }

    /// `storage.s3.resolve` as (host, address); `Err` names the bad entry.
    pub fn resolve_entries(&self) -> Result<Vec<(String, std::net::IpAddr)>, String> {
        self.resolve
            .iter()
            .map(|entry| {
                let (host, address) = entry.split_once('=').ok_or_else(|| format!("{entry:?} is not host=address"))?;
                let address =
                    address.trim().parse().map_err(|_| format!("{entry:?}: {address:?} is not an IP address"))?;
                let host = host.trim();
                let name = host.strip_prefix("*.").unwrap_or(host);
                let valid = !name.is_empty()
                    && name
                        .split('.')
                        .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
                if valid {
                    Ok((host.to_ascii_lowercase(), address))
                } else {
                    Err(format!("{entry:?}: {host:?} is not a host name"))
                }
            })
            .collect()
    }
}

/// A URL with its password replaced, for printing.
fn redacted_url<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    let value = secret.expose_secret();
    let shown = match value.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:[redacted]@{host}")
            }
            None => value.to_owned(),
        },
        None if value.contains('@') => "[redacted]".to_owned(),
        None => value.to_owned(),
    };
    serializer.serialize_str(&shown)
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    #[serde(serialize_with = "redacted")]
    pub delete_secret: SecretString,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

fn redacted<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if secret.expose_secret().is_empty() { "" } else { "[redacted]" })
}

impl Settings {
    /// Loads and validates the settings of `environment` from `sources` and the
    /// process environment.
    pub fn load(environment: Environment, sources: &Sources) -> Result<Self, ConfigError> {
        Self::load_from(environment, sources, None)
    }

    /// As [`Settings::load`], with the `PICSHELF__*` variables given as a map
    /// instead of read from the process environment (tests).
    pub fn load_with_overrides(
        environment: Environment,
        sources: &Sources,
        overrides: HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        Self::load_from(environment, sources, Some(overrides))
    }

    fn load_from(
        environment: Environment,
        sources: &Sources,
        overrides: Option<HashMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        let overrides = config::Environment::with_prefix(OVERRIDE_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            // PICSHELF__SERVER__TRUSTED_PROXIES="10.0.0.0/8,127.0.0.1/32"
            .list_separator(",")
            .with_list_parse_key("server.trusted_proxies")
            .with_list_parse_key("variants.widths")
            .with_list_parse_key("storage.s3.resolve")
            .source(overrides);
        let on_disk = |dir: &Path, name: &str| {
            config::File::from(dir.join(name)).format(config::FileFormat::Toml).required(false)
        };
        let compiled_in = |text: &str| config::File::from_str(text, config::FileFormat::Toml);
        let env_file = format!("{environment}.toml");
        let merged = config::Config::builder()
            .add_source(compiled_in(EMBEDDED_DEFAULT))
            .add_source(on_disk(&sources.config_dir, "default.toml"))
            .add_source(compiled_in(embedded_environment_file(environment)))
            .add_source(on_disk(&sources.config_dir, &env_file))
            .add_source(on_disk(&sources.instance_dir, "config.toml"))
            .add_source(overrides)
            .build()?;
        let mut settings: Settings = merged.try_deserialize()?;
        settings.environment = environment;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot; the error names every offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut checks = Checks::default();
        let env = self.environment;

        checks.check(self.server.workers <= 1024, "server.workers", "must be at most 1024 (0 means one per core)");
        let url = &self.server.public_url;
        checks.check(
            url.is_empty() || ((url.starts_with("http://") || url.starts_with("https://")) && !url.ends_with('/')),
            "server.public_url",
            format!("{url:?} must be empty or an absolute http(s) URL without a trailing slash"),
        );

        let upload = &self.upload;
        checks.check(upload.max_file_bytes > 0, "upload.max_file_bytes", "must be positive");
        checks.check(upload.max_files > 0, "upload.max_files", "must be at least 1");
        checks.check(
            upload.max_request_bytes >= upload.max_file_bytes,
            "upload.max_request_bytes",
            format!("must be at least upload.max_file_bytes ({})", upload.max_file_bytes),
        );
        checks.check(upload.max_pixels > 0, "upload.max_pixels", "must be positive");
        checks.check(upload.max_concurrent > 0, "upload.max_concurrent", "must be at least 1");
        checks.check(upload.idle_timeout_secs > 0, "upload.idle_timeout_secs", "must be positive");
        checks.check(upload.max_duration_secs > 0, "upload.max_duration_secs", "must be positive");
        checks.check(upload.max_rewrite_bytes > 0, "upload.max_rewrite_bytes", "must be positive");
        checks.check(
            upload.rewrite_memory_bytes >= upload.max_rewrite_bytes,
            "upload.rewrite_memory_bytes",
            "must be at least upload.max_rewrite_bytes",
        );

        let variants = &self.variants;
        checks.check(
            !variants.widths.is_empty() && variants.widths.iter().all(|w| (1..=8192).contains(w)),
            "variants.widths",
            "must list at least one width, each from 1 to 8192",
        );
        checks.check(
            variants.max_concurrent <= 256,
            "variants.max_concurrent",
            "must be at most 256 (0: one per core)",
        );
        checks.check(variants.timeout_ms > 0, "variants.timeout_ms", "must be positive");
        checks.check(variants.max_decoded_pixels > 0, "variants.max_decoded_pixels", "must be positive");
        checks.check(variants.max_decode_bytes > 0, "variants.max_decode_bytes", "must be positive");
        checks.check(variants.max_source_bytes > 0, "variants.max_source_bytes", "must be positive");

        let storage = &self.storage;
        checks.check(storage.ready_timeout_ms > 0, "storage.ready_timeout_ms", "must be positive");
        checks.check(storage.sweep_interval_secs > 0, "storage.sweep_interval_secs", "must be positive");
        // The sweeper removes what is older than this; a live upload must never be.
        checks.check(
            storage.stale_upload_secs > upload.max_duration_secs,
            "storage.stale_upload_secs",
            format!("must be longer than upload.max_duration_secs ({})", upload.max_duration_secs),
        );

        match self.storage.backend {
            Backend::Fs => {
                checks.check(!self.storage.fs.root.as_os_str().is_empty(), "storage.fs.root", "must name a directory");
                checks.check(
                    self.storage.fs.operation_timeout_ms > 0,
                    "storage.fs.operation_timeout_ms",
                    "must be positive",
                );
            }
            Backend::S3 => self.validate_s3(&mut checks),
        }

        let secret = self.security.delete_secret.expose_secret();
        checks.check(secret.len() >= 32, "security.delete_secret", "must be at least 32 characters");
        checks.check(
            env != Environment::Prod || !secret.contains("insecure"),
            "security.delete_secret",
            "is a development value; set a real secret for prod",
        );

        checks.check(
            is_log_filter(&self.log.level),
            "log.level",
            format!(
                "{:?} is not a level (trace, debug, info, warn, error, off) or a list like \"info,picshelf=debug\"",
                self.log.level
            ),
        );
        checks.finish()
    }

    fn validate_s3(&self, checks: &mut Checks) {
        let s3 = &self.storage.s3;
        let env = self.environment;

        // The guard against cross-environment writes: a bucket belongs to the
        // environment its name ends with.
        let suffix = format!("-{env}");
        checks.check(
            s3.bucket.ends_with(&suffix) && s3.bucket.len() > suffix.len(),
            "storage.s3.bucket",
            format!(
                "{:?} is not a {env} bucket: in the {env} environment the bucket name must end in {suffix:?}",
                s3.bucket
            ),
        );
        checks.check(
            s3.prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) && !s3.prefix.starts_with('/'),
            "storage.s3.prefix",
            "may hold only letters, digits, '-', '_', '.', '/' and must not start with '/'",
        );
        checks.check(
            !s3.region.is_empty(),
            "storage.s3.region",
            "must be set (e.g. us-east-1, garage, oss-cn-hangzhou)",
        );
        checks.check(
            s3.endpoint.is_empty() || s3.endpoint.starts_with("http://") || s3.endpoint.starts_with("https://"),
            "storage.s3.endpoint",
            format!("{:?} must be an http(s) URL, or empty for AWS", s3.endpoint),
        );
        checks.check(!s3.access_key_id.is_empty(), "storage.s3.access_key_id", "must be set for the s3 backend");
        checks.check(
            !s3.secret_access_key.expose_secret().is_empty(),
            "storage.s3.secret_access_key",
            "must be set for the s3 backend",
        );
        checks.check(
            (S3_MIN_PART_BYTES..=S3_MAX_OBJECT_BYTES).contains(&s3.part_size_bytes),
            "storage.s3.part_size_bytes",
            format!("must be between {S3_MIN_PART_BYTES} (5 MiB) and {S3_MAX_OBJECT_BYTES} (5 GiB)"),
        );
        checks.check((1..=16).contains(&s3.parts_in_flight), "storage.s3.parts_in_flight", "must be between 1 and 16");
        checks.check(s3.connect_timeout_ms > 0, "storage.s3.connect_timeout_ms", "must be positive");
        checks.check(s3.operation_timeout_ms > 0, "storage.s3.operation_timeout_ms", "must be positive");
        checks.check(
            s3.min_transfer_bytes_per_sec >= 1024,
            "storage.s3.min_transfer_bytes_per_sec",
            "must be at least 1024",
        );
        checks.check((1..=10).contains(&s3.max_attempts), "storage.s3.max_attempts", "must be between 1 and 10");
        checks.check(
            self.upload.max_file_bytes <= S3_MAX_OBJECT_BYTES,
            "upload.max_file_bytes",
            "must be at most 5 GiB with the s3 backend",
        );
        if let Err(problem) = s3.resolve_entries() {
            checks.check(
                false,
                "storage.s3.resolve",
                format!("{problem}; entries are host=address, the host exact or *.suffix"),
            );
        }
        if let ProxySetting::Url(url) = s3.proxy_setting() {
            checks.check(
                url.starts_with("http://") || url.starts_with("https://"),
                "storage.s3.proxy",
                "must be empty (the environment's proxy), \"none\", or an http(s) URL",
            );
        }
        checks.check(
            (S3_MIN_PART_BYTES..=S3_MAX_OBJECT_BYTES).contains(&s3.copy_part_bytes),
            "storage.s3.copy_part_bytes",
            format!("must be between {S3_MIN_PART_BYTES} (5 MiB) and {S3_MAX_OBJECT_BYTES} (5 GiB)"),
        );
        checks.check(
            (1..=S3_MAX_OBJECT_BYTES).contains(&s3.copy_threshold_bytes),
            "storage.s3.copy_threshold_bytes",
            "must be between 1 and 5 GiB (a single CopyObject's limit on AWS; 1 GB on Aliyun OSS)",
        );
        checks.check(
            (1..=604_800).contains(&s3.presign_ttl_secs),
            "storage.s3.presign_ttl_secs",
            "must be between 1 and 604800 (7 days, the longest a SigV4 URL may live)",
        );
    }

    /// The effective settings as TOML, secrets redacted (`picshelf config`).
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_sources(instance_dir: &Path) -> Sources {
        Sources {
            config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            instance_dir: instance_dir.to_path_buf(),
        }
    }

    fn load(env: Environment, instance: &Path, pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let overrides = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::load_with_overrides(env, &repo_sources(instance), overrides)
    }

    fn empty_instance() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    /// The first key an `Invalid` error names.
    fn invalid_key(result: Result<Settings, ConfigError>) -> String {
        match result {
            Err(e @ ConfigError::Invalid(_)) => e.keys()[0].to_owned(),
            other => panic!("expected an invalid-key error, got {other:?}"),
        }
    }

    #[test]
    fn payload_signing_auto_signs_over_plain_http_only() {
        let instance = empty_instance();
        let signs = |pairs: &[(&str, &str)]| {
            load(Environment::Dev, instance.path(), pairs).unwrap().storage.s3.signs_payloads()
        };
        assert!(!signs(&[]), "no endpoint is AWS, over HTTPS");
        assert!(!signs(&[("PICSHELF__STORAGE__S3__ENDPOINT", "https://oss-cn-hangzhou.aliyuncs.com")]));
        assert!(!signs(&[("PICSHELF__STORAGE__S3__ENDPOINT", "HTTPS://minio.example")]));
        assert!(signs(&[("PICSHELF__STORAGE__S3__ENDPOINT", "http://127.0.0.1:3900")]));
        assert!(signs(&[
            ("PICSHELF__STORAGE__S3__PAYLOAD_SIGNING", "always"),
            ("PICSHELF__STORAGE__S3__ENDPOINT", "https://s3.example")
        ]));
        assert!(!signs(&[
            ("PICSHELF__STORAGE__S3__PAYLOAD_SIGNING", "never"),
            ("PICSHELF__STORAGE__S3__ENDPOINT", "http://garage:3900")
        ]));
        let bad = load(Environment::Dev, instance.path(), &[("PICSHELF__STORAGE__S3__PAYLOAD_SIGNING", "sometimes")]);
        assert!(bad.is_err());
    }

    #[test]
    fn dev_runs_on_disk_with_defaults_and_no_instance_file() {
        let instance = empty_instance();
        let settings = load(Environment::Dev, instance.path(), &[]).unwrap();
        assert_eq!(settings.environment, Environment::Dev);
        assert_eq!(settings.storage.backend, Backend::Fs);
        assert_eq!(settings.storage.fs.root, PathBuf::from("data/dev"));
        assert_eq!(settings.server.host, "127.0.0.1");
        assert_eq!(settings.server.port, 8000);
        assert_eq!(settings.log.format, LogFormat::Pretty);
    }

    #[test]
    fn each_environment_file_names_its_own_bucket() {
        let instance = empty_instance();
        let bucket = |env| {
            let creds = [
                ("PICSHELF__STORAGE__S3__ACCESS_KEY_ID", "GK0123"),
                ("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", "s3cr3t"),
                ("PICSHELF__SECURITY__DELETE_SECRET", "a-real-production-secret-of-some-length"),
            ];
            load(env, instance.path(), &creds).unwrap().storage.s3.bucket
        };
        assert_eq!(bucket(Environment::Dev), "picshelf-dev");
        assert_eq!(bucket(Environment::Test), "picshelf-test");
        assert_eq!(bucket(Environment::Prod), "picshelf-prod");
    }

    #[test]
    fn layers_override_in_order_default_env_instance_variables() {
        let instance = empty_instance();
        std::fs::write(
            instance.path().join("config.toml"),
            "[server]\nport = 9100\nworkers = 3\n[upload]\nmax_files = 4\n",
        )
        .unwrap();
        let settings = load(Environment::Test, instance.path(), &[("PICSHELF__SERVER__PORT", "9200")]).unwrap();
        // default.toml
        assert_eq!(settings.upload.max_pixels, 100_000_000);
        // test.toml over default.toml
        assert_eq!(settings.storage.fs.root, PathBuf::from("data/test"));
        assert_eq!(settings.log.format, LogFormat::Json);
        // instance file over both
        assert_eq!(settings.server.workers, 3);
        assert_eq!(settings.upload.max_files, 4);
        // environment variable over everything
        assert_eq!(settings.server.port, 9200);
    }

    #[test]
    fn dev_and_test_refuse_the_prod_bucket() {
        let instance = empty_instance();
        for env in [Environment::Dev, Environment::Test] {
            let result = load(
                env,
                instance.path(),
                &[
                    ("PICSHELF__STORAGE__BACKEND", "s3"),
                    ("PICSHELF__STORAGE__S3__BUCKET", "picshelf-prod"),
                    ("PICSHELF__STORAGE__S3__ACCESS_KEY_ID", "GK0123"),
                    ("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", "s3cr3t"),
                ],
            );
            assert_eq!(invalid_key(result), "storage.s3.bucket");
        }
    }

    #[test]
    fn prod_refuses_a_dev_bucket_and_a_development_secret() {
        let instance = empty_instance();
        let creds = [
            ("PICSHELF__STORAGE__S3__ACCESS_KEY_ID", "GK0123"),
            ("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", "s3cr3t"),
        ];
        let mut with_dev_bucket = creds.to_vec();
        with_dev_bucket.push(("PICSHELF__SECURITY__DELETE_SECRET", "a-real-production-secret-of-some-length"));
        with_dev_bucket.push(("PICSHELF__STORAGE__S3__BUCKET", "picshelf-dev"));
        assert_eq!(invalid_key(load(Environment::Prod, instance.path(), &with_dev_bucket)), "storage.s3.bucket");

        // prod.toml carries no secret at all.
        assert_eq!(invalid_key(load(Environment::Prod, instance.path(), &creds)), "security.delete_secret");

        let mut with_dev_secret = creds.to_vec();
        with_dev_secret.push(("PICSHELF__SECURITY__DELETE_SECRET", "dev-only-insecure-delete-secret-0123456789"));
        assert_eq!(invalid_key(load(Environment::Prod, instance.path(), &with_dev_secret)), "security.delete_secret");
    }

    #[test]
    fn bad_values_name_their_key() {
        let instance = empty_instance();
        let err = load(Environment::Dev, instance.path(), &[("PICSHELF__SERVER__PORT", "eighty")]).unwrap_err();
        assert!(err.to_string().contains("server.port"), "{err}");

        let err = load(Environment::Dev, instance.path(), &[("PICSHELF__UPLOAD__MAX_FILES", "0")]).unwrap_err();
        assert!(err.to_string().contains("upload.max_files"), "{err}");

        std::fs::write(instance.path().join("config.toml"), "[upload]\nmax_file_byte = 5\n").unwrap();
        let err = load(Environment::Dev, instance.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("max_file_byte"), "{err}");
    }

    #[test]
    fn every_bad_key_is_named_at_once() {
        let instance = empty_instance();
        let err = load(
            Environment::Dev,
            instance.path(),
            &[
                ("PICSHELF__UPLOAD__MAX_FILES", "0"),
                ("PICSHELF__LOG__LEVEL", "loud"),
                ("PICSHELF__SERVER__PUBLIC_URL", "x/"),
            ],
        )
        .unwrap_err();
        assert_eq!(err.keys(), ["server.public_url", "upload.max_files", "log.level"]);
    }

    #[test]
    fn log_levels_are_levels() {
        for good in ["info", "WARN", "info,picshelf=debug", "aws_smithy_runtime=warn,debug"] {
            assert!(is_log_filter(good), "{good}");
        }
        for bad in ["", "loud", "info,", "=debug", "picshelf=verbose"] {
            assert!(!is_log_filter(bad), "{bad}");
        }
    }

    #[test]
    fn s3_part_size_below_the_s3_minimum_is_refused() {
        let instance = empty_instance();
        let result = load(
            Environment::Dev,
            instance.path(),
            &[
                ("PICSHELF__STORAGE__BACKEND", "s3"),
                ("PICSHELF__STORAGE__S3__ACCESS_KEY_ID", "GK0123"),
                ("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", "s3cr3t"),
                ("PICSHELF__STORAGE__S3__PART_SIZE_BYTES", "1048576"),
            ],
        );
        assert_eq!(invalid_key(result), "storage.s3.part_size_bytes");
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_in_the_printed_settings() {
        let instance = empty_instance();
        let secret = "super-secret-value-that-must-not-leak-42";
        let settings = load(
            Environment::Dev,
            instance.path(),
            &[("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", secret), ("PICSHELF__SECURITY__DELETE_SECRET", secret)],
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains(secret));
        let printed = settings.to_redacted_toml();
        assert!(!printed.contains(secret));
        assert!(printed.contains("[redacted]"));
        assert!(printed.contains("picshelf-dev"));
    }

    #[test]
    fn a_proxy_password_is_redacted_and_resolve_entries_are_checked() {
        let instance = empty_instance();
        let proxy = "http://alice:hunter2-proxy-password@proxy.internal:3128";
        let resolve = "s3.internal=10.0.0.5,*.s3.internal=10.0.0.6";
        let vars = [("PICSHELF__STORAGE__S3__PROXY", proxy), ("PICSHELF__STORAGE__S3__RESOLVE", resolve)];
        let settings = load(Environment::Dev, instance.path(), &vars).unwrap();
        let printed = settings.to_redacted_toml();
        assert!(!printed.contains("hunter2") && !format!("{settings:?}").contains("hunter2"));
        assert!(printed.contains("http://alice:[redacted]@proxy.internal:3128"), "{printed}");
        assert_eq!(settings.storage.s3.proxy_setting(), ProxySetting::Url(proxy.into()));
        let entries = settings.storage.s3.resolve_entries().unwrap();
        assert_eq!(entries[1], ("*.s3.internal".to_owned(), "10.0.0.6".parse().unwrap()));

        let mut broken = settings.clone();
        broken.storage.backend = Backend::S3;
        broken.storage.s3.resolve = vec!["s3.internal=not-an-ip".into()];
        let problem = broken.validate().unwrap_err().to_string();
        assert!(problem.contains("storage.s3.resolve") && problem.contains("not-an-ip"), "{problem}");
    }

    #[test]
    fn the_compiled_in_files_are_enough_to_start_anywhere() {
        let nowhere = tempfile::tempdir().unwrap();
        let sources =
            Sources { config_dir: nowhere.path().join("config"), instance_dir: nowhere.path().join("instance") };
        let settings = Settings::load_with_overrides(Environment::Dev, &sources, HashMap::new()).unwrap();
        assert_eq!(settings.storage.backend, Backend::Fs);
        assert_eq!(settings.storage.fs.root, PathBuf::from("data/dev"));
        assert_eq!(settings.storage.s3.bucket, "picshelf-dev");
        let test = Settings::load_with_overrides(Environment::Test, &sources, HashMap::new()).unwrap();
        assert_eq!(test.storage.s3.bucket, "picshelf-test");
    }

    #[test]
    fn the_environment_name_is_checked() {
        assert_eq!("prod".parse::<Environment>().unwrap(), Environment::Prod);
        assert_eq!("Development".parse::<Environment>().unwrap(), Environment::Dev);
        let err = "staging".parse::<Environment>().unwrap_err();
        assert!(err.to_string().contains(ENV_VAR), "{err}");
    }
}
