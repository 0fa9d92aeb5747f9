//! The S3 client the store talks to its bucket with: the shared
//! configuration of `picshelf-s3-client`, from the settings. Each call's
//! total deadline is the store's own (see [`super::bucket::Bucket::run`]):
//! the SDK only bounds the connect, and retries what fails fast within it.

use std::future::Future;
use std::time::Duration;

use aws_runtime::auth::PayloadSigningOverride;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
use aws_sdk_s3::operation::upload_part::builders::UploadPartFluentBuilder;
use aws_sdk_s3::operation::upload_part::{UploadPartError, UploadPartOutput};
use futures_util::future::Either;
use picshelf_s3_client::{ClientOptions, Proxy};
use secrecy::ExposeSecret;

use crate::config::{ProxySetting, S3Settings};

pub fn options(settings: &S3Settings) -> ClientOptions {
    ClientOptions {
        endpoint: (!settings.endpoint.is_empty()).then(|| settings.endpoint.clone()),
        region: settings.region.clone(),
        path_style: settings.path_style,
        access_key_id: settings.access_key_id.clone(),
        secret_access_key: settings.secret_access_key.expose_secret().to_owned(),
        connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
        max_attempts: settings.max_attempts,
        // Validated at startup.
        resolve: settings.resolve_entries().unwrap_or_default(),
        proxy: match settings.proxy_setting() {
            ProxySetting::FromEnvironment => Proxy::FromEnvironment,
            ProxySetting::Disabled => Proxy::Disabled,
            ProxySetting::Url(url) => Proxy::Url(url),
        },
    }
}

/// One client (and connection pool) for the life of the store.
pub fn build(settings: &S3Settings) -> anyhow::Result<Client> {
    picshelf_s3_client::client(&options(settings)).map_err(anyhow::Error::msg)
}

/// Sends a PutObject, its body hashed into the signature when `sign`
/// ([`S3Settings::signs_payloads`]). `known_sha256`, the lowercase hex SHA-256
/// of exactly this body when the caller has it (an upload hashes its bytes as
/// they stream in), goes into the signature as it is: the body is not hashed a
/// second time, and the store still checks the bytes it got against it.
pub fn send_put_object(
    request: PutObjectFluentBuilder,
    sign: bool,
    known_sha256: Option<&str>,
) -> impl Future<Output = Result<PutObjectOutput, SdkError<PutObjectError, HttpResponse>>> + Send + use<> {
    match (sign, known_sha256) {
        (true, None) => Either::Left(request.send()),
        (true, Some(sha256)) => {
            Either::Right(Either::Left(request.customize().interceptor(KnownPayloadHash(sha256.to_owned())).send()))
        }
        (false, _) => Either::Right(Either::Right(request.customize().disable_payload_signing().send())),
    }
}

/// Signs a request with the SHA-256 of its body given, instead of hashing the body.
#[derive(Debug)]
struct KnownPayloadHash(String);

impl Intercept for KnownPayloadHash {
    fn name(&self) -> &'static str {
        "KnownPayloadHash"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // Only for a body held in memory, the one that was hashed; a streaming
        // body keeps the signing scheme the SDK chose for it.
        if context.request().body().bytes().is_some() {
            cfg.interceptor_state().store_put(PayloadSigningOverride::Precomputed(self.0.clone()));
        }
        Ok(())
    }
}

/// Sends an UploadPart, its body hashed into the signature when `sign`.
pub fn send_upload_part(
    request: UploadPartFluentBuilder,
    sign: bool,
) -> impl Future<Output = Result<UploadPartOutput, SdkError<UploadPartError, HttpResponse>>> + Send + 'static {
    if sign {
        Either::Left(request.send())
    } else {
        Either::Right(request.customize().disable_payload_signing().send())
    }
}
