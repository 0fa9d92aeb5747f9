//! `picshelf check-store`: with the effective settings, proves the store is
//! reachable and writable before anything is deployed on it. It writes,
//! reads back, range-reads and deletes a probe object, and reports the
//! addressing mode, the region, the checksum mode, the proxy, the lifecycle
//! rules it can see and the clock skew. The first failure ends it with one
//! line saying what to fix (a wrong key, a wrong region, a missing bucket,
//! path-style refused, a name that does not resolve, an unreachable endpoint
//! or proxy) and a non-zero exit.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::BucketLifecycleConfiguration;

use crate::config::{Backend, ProxySetting, S3Settings, Settings};
use crate::storage::s3::diagnosis::Diagnosis;

/// Aliyun OSS copies at most 1 GB with one CopyObject.
const OSS_MAX_COPY_BYTES: u64 = 1_000_000_000;
/// SigV4 signatures are refused when the clocks differ by more than this.
const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
const PROBE_BYTES: usize = 4096;

/// What the check found: `ok:` and `warning:` lines, or the one failure.
pub struct Report {
    pub lines: Vec<String>,
    pub failure: Option<String>,
}

/// Runs the check on a runtime of its own.
pub fn run(settings: &Settings) -> Report {
    let mut report = Report { lines: Vec::new(), failure: None };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            report.failure = Some(format!("cannot start a runtime: {e}"));
            return report;
        }
    };
    let outcome = runtime.block_on(async {
        match settings.storage.backend {
            Backend::S3 => check_s3(&settings.storage.s3, settings.upload.max_file_bytes, &mut report.lines).await,
            Backend::Fs => check_fs(&settings.storage.fs.root, &mut report.lines).await,
        }
    });
    report.failure = outcome.err();
    report
}

fn probe_bytes() -> Vec<u8> {
    let seed = uuid::Uuid::new_v4();
    seed.as_bytes().iter().cycle().take(PROBE_BYTES).enumerate().map(|(i, b)| b.wrapping_add(i as u8)).collect()
}

async fn check_fs(root: &std::path::Path, lines: &mut Vec<String>) -> Result<(), String> {
    lines.push(format!("store: a directory, {}", root.display()));
    let tmp = root.join("tmp");
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(|e| format!("cannot create {}: {e} (check the path and its permissions)", tmp.display()))?;
    let probe = tmp.join(format!("check-store-{}", uuid::Uuid::new_v4().simple()));
    let bytes = probe_bytes();
    tokio::fs::write(&probe, &bytes).await.map_err(|e| format!("cannot write {}: {e}", probe.display()))?;
    let back = tokio::fs::read(&probe).await.map_err(|e| format!("cannot read {}: {e}", probe.display()))?;
    let removed = tokio::fs::remove_file(&probe).await;
    if back != bytes {
        return Err(format!("{} read back other bytes than were written", probe.display()));
    }
    removed.map_err(|e| format!("cannot delete {}: {e}", probe.display()))?;
    lines.push(format!("ok: wrote, read back and deleted a {PROBE_BYTES}-byte probe"));
    Ok(())
}

/// One SDK call within the store's deadline; a failure becomes the line that ends the check.
async fn call<T, E>(
    what: &str,
    deadline: Duration,
    proxied: bool,
    request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, String>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match tokio::time::timeout(deadline, request).await {
        Err(_) => Err(format!("{what}: {} (nothing within {} ms)", Diagnosis::TimedOut.advice(), deadline.as_millis())),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            let diagnosis = Diagnosis::of(&e, proxied);
            let detail = match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!(" ({code}: {message})"),
                (Some(code), None) => format!(" ({code})"),
                _ => String::new(),
            };
            Err(format!("{what}: {}{detail}", diagnosis.advice()))
        }
    }
}

/// Keeps the `Date` header of the answer it sees: the store's clock.
#[derive(Clone, Debug, Default)]
struct DateHeader(Arc<Mutex<Option<String>>>);

impl Intercept for DateHeader {
    fn name(&self) -> &'static str {
        "DateHeader"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(date.to_owned());
        }
        Ok(())
    }
}

fn describe_proxy(s3: &S3Settings) -> String {
    match s3.proxy_setting() {
        ProxySetting::Disabled => "proxy: none (storage.s3.proxy = \"none\")".into(),
        ProxySetting::Url(_) => "proxy: storage.s3.proxy".into(),
        ProxySetting::FromEnvironment if s3.uses_proxy() => {
            "proxy: from the environment (HTTPS_PROXY / HTTP_PROXY, NO_PROXY exempts)".into()
        }
        ProxySetting::FromEnvironment => "proxy: none (the environment names none)".into(),
    }
}

async fn check_s3(s3: &S3Settings, max_file_bytes: u64, lines: &mut Vec<String>) -> Result<(), String> {
    let endpoint = if s3.endpoint.is_empty() { "AWS S3".to_owned() } else { s3.endpoint.clone() };
    let addressing = if s3.path_style { "path-style (host/bucket/key)" } else { "virtual-hosted (bucket.host/key)" };
    lines.push(format!("store: S3 bucket {:?} at {endpoint}, region {:?}", s3.bucket, s3.region));
    lines.push(format!("addressing: {addressing}"));
    lines.push(format!(
        "upload bodies: {} (storage.s3.payload_signing = {})",
        if s3.signs_payloads() { "hashed into their signatures" } else { "UNSIGNED-PAYLOAD" },
        s3.payload_signing.name()
    ));
    lines.push("checksums: only where an operation requires one (when_required)".into());
    lines.push(describe_proxy(s3));
    if !s3.resolve.is_empty() {
        lines.push(format!("resolve: {}", s3.resolve.join(", ")));
    }
    if s3.endpoint.contains("aliyuncs.com") && s3.copy_threshold_bytes > OSS_MAX_COPY_BYTES {
        return Err(format!(
            "storage.s3.copy_threshold_bytes is {}, over Aliyun OSS's CopyObject limit of {OSS_MAX_COPY_BYTES} bytes: \
             lower it so larger uploads are copied in parts",
            s3.copy_threshold_bytes
        ));
    }

    let client = crate::storage::s3::client::build(s3).map_err(|e| format!("{e:#}"))?;
    let deadline = Duration::from_millis(s3.operation_timeout_ms + s3.connect_timeout_ms);
    let proxied = s3.uses_proxy();
    let bucket = s3.bucket.as_str();

    // Reachable, the key known and allowed, the bucket there: one listing (its
    // errors have bodies, unlike HEAD's), and the store's clock from its Date.
    let date = DateHeader::default();
    let listing = client.list_objects_v2().bucket(bucket).max_keys(1).customize().interceptor(date.clone());
    call("listing the bucket", deadline, proxied, listing.send()).await?;
    lines.push("ok: the bucket answers, and the key may list it".into());
    let server_date = date.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    if let Some(server_time) = server_date.as_deref().and_then(|d| httpdate::parse_http_date(d).ok()) {
        let skew = match SystemTime::now().duration_since(server_time) {
            Ok(ahead) => ahead.as_secs() as i64,
            Err(behind) => -(behind.duration().as_secs() as i64),
        };
        if skew.abs() > MAX_CLOCK_SKEW_SECS {
            return Err(format!(
                "this clock is {skew:+} s off the store's: signed requests are refused beyond {MAX_CLOCK_SKEW_SECS} s; \
                 set the time (NTP)"
            ));
        }
        lines.push(format!("ok: clock skew {skew:+} s against the store (refused beyond ±{MAX_CLOCK_SKEW_SECS} s)"));
    } else {
        lines.push("warning: the store sent no Date header; clock skew unknown".into());
    }

    // Under staging/: if deleting it fails, the lifecycle rule removes it.
    let key = format!("{}staging/check-store-{}", s3.prefix, uuid::Uuid::new_v4().simple());
    let bytes = probe_bytes();
    let put = client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/octet-stream")
        .content_length(bytes.len() as i64)
        .body(ByteStream::from(bytes.clone()));
    // As the store will send uploads: signed payload or not.
    let put = crate::storage::s3::client::send_put_object(put, s3.signs_payloads(), None);
    call("writing a probe object", deadline, proxied, put).await?;
    let whole = call("reading the probe back", deadline, proxied, client.get_object().bucket(bucket).key(&key).send())
        .await?
        .body
        .collect()
        .await
        .map_err(|e| format!("reading the probe back: {e}"))?
        .into_bytes();
    let ranged = call(
        "a range read",
        deadline,
        proxied,
        client.get_object().bucket(bucket).key(&key).range("bytes=1000-1999").send(),
    )
    .await?
    .body
    .collect()
    .await
    .map_err(|e| format!("a range read: {e}"))?
    .into_bytes();
    call("deleting the probe", deadline, proxied, client.delete_object().bucket(bucket).key(&key).send()).await?;
    if whole[..] != bytes[..] {
        return Err("the probe read back differs from what was written: a proxy or the store changes bodies".into());
    }
    if ranged[..] != bytes[1000..2000] {
        return Err("a range read of the probe gave other bytes: the store ignores or mangles Range".into());
    }
    lines.push(format!("ok: wrote, read back, range-read and deleted a {PROBE_BYTES}-byte probe ({key})"));

    let copies = if max_file_bytes > s3.copy_threshold_bytes {
        format!(
            "uploads over {} bytes are copied into place in parts of {} bytes (UploadPartCopy)",
            s3.copy_threshold_bytes, s3.copy_part_bytes
        )
    } else {
        format!("uploads (at most {max_file_bytes} bytes) are copied into place with one CopyObject")
    };
    lines.push(format!("ok: {copies}"));

    let lifecycle = client.get_bucket_lifecycle_configuration().bucket(bucket).send().await;
    lines.extend(describe_lifecycle(lifecycle, &s3.prefix));
    Ok(())
}

fn describe_lifecycle<E: ProvideErrorMetadata>(
    answer: Result<
        aws_sdk_s3::operation::get_bucket_lifecycle_configuration::GetBucketLifecycleConfigurationOutput,
        SdkError<E, HttpResponse>,
    >,
    prefix: &str,
) -> Vec<String> {
    let rules = match answer {
        Ok(output) => output.rules,
        Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => None,
        Err(e) => {
            return vec![format!(
                "warning: the lifecycle rules cannot be read ({}): check them by hand (README, Lifecycle rules)",
                e.code().unwrap_or("no answer")
            )];
        }
    };
    let configuration = BucketLifecycleConfiguration::builder().set_rules(rules).build().ok();
    let rules = configuration.as_ref().map(|c| c.rules()).unwrap_or_default();
    let staging = format!("{prefix}staging/");
    let enabled = |rule: &&aws_sdk_s3::types::LifecycleRule| rule.status().as_str() == "Enabled";
    let aborts =
        rules.iter().filter(enabled).find_map(|r| r.abort_incomplete_multipart_upload()?.days_after_initiation());
    let expires = rules.iter().filter(enabled).find_map(|rule| {
        let filter_prefix = rule.filter().and_then(|f| f.prefix()).unwrap_or("");
        (staging.starts_with(filter_prefix) && !filter_prefix.is_empty()).then(|| rule.expiration()?.days()).flatten()
    });
    vec![
        match aborts {
            Some(days) => format!("ok: lifecycle aborts incomplete multipart uploads after {days} day(s)"),
            None => "warning: no lifecycle rule aborts incomplete multipart uploads (README, Lifecycle rules)".into(),
        },
        match expires {
            Some(days) => format!("ok: lifecycle expires {staging} after {days} day(s)"),
            None => format!("warning: no lifecycle rule expires {staging} (README, Lifecycle rules)"),
        },
    ]
}
