//! What an S3 failure means to the operator who has to fix it: a wrong key,
//! a wrong region, a missing bucket, a store that refuses path-style
//! requests, a name that does not resolve, an endpoint or proxy that does
//! not answer. Each gets its own words, in the log and in `check-store`,
//! instead of one "storage unavailable".

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diagnosis {
    /// The store does not know the access key id.
    UnknownAccessKey,
    /// The key is known; the secret does not match it.
    WrongSecret,
    /// Signed for another region than the store's.
    WrongRegion,
    NoSuchBucket,
    /// The key may not do this on this bucket.
    AccessDenied,
    /// Aliyun OSS and others answer path-style requests with this.
    PathStyleRefused,
    /// The endpoint's host name does not resolve.
    NameNotResolved,
    /// Nothing listens where the endpoint (or the proxy) says.
    ConnectionRefused,
    /// The proxy refused or failed the request.
    ProxyFailed,
    /// No answer in time.
    TimedOut,
    /// Something else; the message carries the store's own words.
    Other,
}

impl Diagnosis {
    pub fn of<E>(err: &SdkError<E, HttpResponse>, through_proxy: bool) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match err {
            SdkError::TimeoutError(_) => Self::TimedOut,
            SdkError::DispatchFailure(failure) => {
                let chain = error_chain(err).to_ascii_lowercase();
                if failure.is_timeout() {
                    Self::TimedOut
                } else if chain.contains("dns error") || chain.contains("failed to lookup address") {
                    if through_proxy { Self::ProxyFailed } else { Self::NameNotResolved }
                } else if chain.contains("connection refused") {
                    if through_proxy { Self::ProxyFailed } else { Self::ConnectionRefused }
                } else if through_proxy && (chain.contains("proxy") || chain.contains("tunnel")) {
                    Self::ProxyFailed
                } else {
                    Self::Other
                }
            }
            _ => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                let message = err.message().unwrap_or_default().to_ascii_lowercase();
                // Garage says "Forbidden: No such key" for an unknown access key.
                if message.contains("no such key") && err.code() == Some("AccessDenied") {
                    return Self::UnknownAccessKey;
                }
                if message.contains("signature") && err.code() == Some("AccessDenied") {
                    return Self::WrongSecret;
                }
                match (err.code(), status) {
                    (Some("InvalidAccessKeyId"), _) => Self::UnknownAccessKey,
                    (Some("SignatureDoesNotMatch"), _) => Self::WrongSecret,
                    (Some("AuthorizationHeaderMalformed" | "IllegalLocationConstraintException"), _) => {
                        Self::WrongRegion
                    }
                    (Some("PermanentRedirect"), _) | (None, Some(301)) => Self::WrongRegion,
                    (Some("NoSuchBucket"), _) => Self::NoSuchBucket,
                    (Some("SecondLevelDomainForbidden"), _) => Self::PathStyleRefused,
                    (Some("AccessDenied"), _) => Self::AccessDenied,
                    (_, Some(407 | 502)) if through_proxy => Self::ProxyFailed,
                    _ => Self::Other,
                }
            }
        }
    }

    /// One line for the operator: what is wrong and where to fix it.
    pub fn advice(self) -> &'static str {
        match self {
            Self::UnknownAccessKey => "the store does not know this access key: check storage.s3.access_key_id",
            Self::WrongSecret => {
                "the store knows the access key but the secret does not match: check storage.s3.secret_access_key"
            }
            Self::WrongRegion => "the store expects another region: check storage.s3.region",
            Self::NoSuchBucket => "the bucket does not exist: create it, or check storage.s3.bucket",
            Self::AccessDenied => "the access key may not use this bucket: grant it read and write on the bucket",
            Self::PathStyleRefused => {
                "the store refuses path-style requests: set storage.s3.path_style = false (virtual-hosted)"
            }
            Self::NameNotResolved => {
                "the endpoint's host name does not resolve: check storage.s3.endpoint, DNS, or storage.s3.resolve"
            }
            Self::ConnectionRefused => {
                "nothing answers at the endpoint: check storage.s3.endpoint and that the store runs"
            }
            Self::ProxyFailed => "the proxy failed: check storage.s3.proxy or HTTPS_PROXY / HTTP_PROXY / NO_PROXY",
            Self::TimedOut => {
                "the store did not answer in time: check the endpoint, the network, and the store's health"
            }
            Self::Other => "the store refused the request",
        }
    }
}

/// The error and its sources, joined: dispatch failures hide the cause deep down.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}
