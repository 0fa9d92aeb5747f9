//! The API's contract: an OpenAPI 3.1 document built from one table of the
//! routes ([`ROUTES`]), the error-code registry and the answer types, served
//! at `GET /main/openapi.json` and committed as `docs/openapi.json` (a test
//! fails when they differ, so every API change shows up in review). The e2e
//! suite checks every answer it gets against the served document.

use actix_web::HttpResponse;
use actix_web::http::header::{CacheControl, CacheDirective};
use std::sync::LazyLock;

use serde_json::json;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, Required,
    ResponseBuilder, Schema,
};
use utoipa::{PartialSchema, ToSchema};

use crate::error_code::ErrorCode;
use crate::image::ImageFormat;
use crate::web::routes::upload::{UploadResponse, UploadedFile};

/// Error codes nginx answers with in front of picshelf (its JSON error pages).
pub const PROXY_ERROR_CODES: [(u16, &str); 5] = [
    (413, "payload_too_large"),
    (429, "rate_limited"),
    (502, "bad_gateway"),
    (503, "service_unavailable"),
    (504, "gateway_timeout"),
];

/// What a successful answer carries.
enum Body {
    Json(&'static str),
    /// One of the accepted image formats.
    Image,
    /// Any of these media types.
    Bytes(&'static [&'static str]),
    Html,
    Text(&'static str),
    Empty,
}

struct Answer {
    status: u16,
    description: &'static str,
    body: Body,
}

struct Param {
    name: &'static str,
    location: ParameterIn,
    description: &'static str,
    schema: fn() -> Schema,
}

struct Route {
    path: &'static str,
    methods: &'static [HttpMethod],
    summary: &'static str,
    params: &'static [Param],
    /// `multipart/form-data` with `file` fields.
    upload: bool,
    answers: &'static [Answer],
    errors: &'static [ErrorCode],
    /// Answers of the deployment's nginx besides 502/504 (every route has those).
    proxy: &'static [u16],
}

fn string() -> Schema {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).into()
}

fn image_id() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"))
        .description(Some("a canonical lowercase uuid v7"))
        .into()
}

fn width() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .description(Some("one of variants.widths (default 160, 320, 640, 1280)"))
        .into()
}

fn variant_format() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(["webp", "jpeg", "jpg", "png"]))
        .into()
}

const ID: Param = Param { name: "id", location: ParameterIn::Path, description: "the image id", schema: image_id };
const TOKEN: Param = Param {
    name: "token",
    location: ParameterIn::Query,
    description: "delete token(s), comma-separated in the order of the ids",
    schema: string,
};

use ErrorCode as E;
use HttpMethod::{Delete, Get, Head, Post};

/// A page (`GET`, `HEAD`) that only fails on a broken template.
const fn page(path: &'static str, summary: &'static str) -> Route {
    Route {
        path,
        methods: &[Get, Head],
        summary,
        params: &[],
        upload: false,
        answers: &[Answer { status: 200, description: "the page", body: Body::Html }],
        errors: &[E::InternalError],
        proxy: &[],
    }
}

/// A permanent redirect to the upload page.
const fn to_the_page(path: &'static str) -> Route {
    Route {
        path,
        methods: &[Get, Head],
        summary: "To the page",
        params: &[],
        upload: false,
        answers: &[Answer { status: 308, description: "Location: main/", body: Body::Empty }],
        errors: &[],
        proxy: &[],
    }
}

/// Every route picshelf answers, with every status it can give.
const ROUTES: &[Route] = &[
    Route {
        path: "/main/upload",
        methods: &[Post],
        summary: "Upload images: multipart field `file`, one or more; all are stored or none",
        params: &[],
        upload: true,
        answers: &[
            Answer {
                status: 201,
                description: "stored; `Location` is the first file's URL",
                body: Body::Json("UploadResponse"),
            },
            Answer {
                status: 303,
                description: "a browser form post (Accept: text/html): to the page of the new images",
                body: Body::Empty,
            },
        ],
        errors: &[
            E::MalformedMultipart,
            E::IncompleteUpload,
            E::MissingFile,
            E::EmptyFile,
            E::TooManyFields,
            E::MalformedImage,
            E::UploadTimeout,
            E::RequestTooLarge,
            E::FileTooLarge,
            E::TooManyFiles,
            E::TooManyPixels,
            E::FieldTooLarge,
            E::TooLargeToStrip,
            E::UnsupportedType,
            E::UnsupportedContentType,
            E::StorageUnavailable,
            E::TooManyUploads,
            E::InternalError,
        ],
        proxy: &[413, 429],
    },
    Route {
        path: "/main/download/{id}",
        methods: &[Get, Head],
        summary: "The image, or with `width` a variant of it (made once, then stored)",
        params: &[
            ID,
            Param {
                name: "download",
                location: ParameterIn::Query,
                description: "present: Content-Disposition attachment",
                schema: string,
            },
            Param {
                name: "width",
                location: ParameterIn::Query,
                description: "a variant this wide at most",
                schema: width,
            },
            Param {
                name: "format",
                location: ParameterIn::Query,
                description: "the variant's format (default webp); needs width",
                schema: variant_format,
            },
        ],
        upload: false,
        answers: &[
            Answer { status: 200, description: "the bytes (HEAD: the headers only)", body: Body::Image },
            Answer { status: 206, description: "one byte range of them", body: Body::Image },
            Answer {
                status: 302,
                description: "storage.s3.redirect_downloads: to a presigned URL the bucket serves",
                body: Body::Empty,
            },
            Answer { status: 304, description: "If-None-Match named these bytes", body: Body::Empty },
        ],
        errors: &[
            E::InvalidVariant,
            E::NotFound,
            E::TooLargeForVariants,
            E::VariantUnsupported,
            E::RangeNotSatisfiable,
            E::UndecodableImage,
            E::StorageUnavailable,
            E::TooManyVariants,
            E::VariantTimeout,
            E::InternalError,
        ],
        proxy: &[],
    },
    Route {
        path: "/main/download/{id}",
        methods: &[Delete],
        summary: "Delete an image and its variants, with its delete token (X-Delete-Token or ?token=)",
        params: &[ID, TOKEN],
        upload: false,
        answers: &[Answer { status: 204, description: "deleted", body: Body::Empty }],
        errors: &[E::InvalidDeleteToken, E::NotFound, E::StorageUnavailable, E::InternalError],
        proxy: &[],
    },
    Route {
        path: "/main/view/{ids}",
        methods: &[Get, Head],
        summary: "The page of one or more images (ids comma-separated)",
        params: &[
            Param {
                name: "ids",
                location: ParameterIn::Path,
                description: "image ids, comma-separated",
                schema: string,
            },
            TOKEN,
        ],
        upload: false,
        answers: &[Answer { status: 200, description: "the page", body: Body::Html }],
        errors: &[E::NotFound, E::StorageUnavailable, E::InternalError],
        proxy: &[],
    },
    page("/main/", "The upload page"),
    Route {
        path: "/main/static/{name}",
        methods: &[Get, Head],
        summary: "The page's stylesheet, script and icon",
        params: &[Param { name: "name", location: ParameterIn::Path, description: "a file name", schema: string }],
        upload: false,
        answers: &[
            Answer {
                status: 200,
                description: "the file",
                body: Body::Bytes(&["text/css; charset=utf-8", "text/javascript; charset=utf-8", "image/svg+xml"]),
            },
            Answer { status: 304, description: "If-None-Match named this version", body: Body::Empty },
        ],
        errors: &[E::NotFound],
        proxy: &[],
    },
    Route {
        path: "/main/openapi.json",
        methods: &[Get, Head],
        summary: "This document",
        params: &[],
        upload: false,
        answers: &[Answer { status: 200, description: "OpenAPI 3.1", body: Body::Json("OpenApiDocument") }],
        errors: &[],
        proxy: &[],
    },
    page("/main/api", "This document as a page"),
    to_the_page("/"),
    to_the_page("/main"),
    Route {
        path: "/healthz",
        methods: &[Get, Head],
        summary: "Liveness",
        params: &[],
        upload: false,
        answers: &[Answer { status: 200, description: "the process answers", body: Body::Json("Health") }],
        errors: &[],
        proxy: &[],
    },
    Route {
        path: "/readyz",
        methods: &[Get, Head],
        summary: "Readiness: the store answers within storage.ready_timeout_ms",
        params: &[],
        upload: false,
        answers: &[Answer { status: 200, description: "ready", body: Body::Json("Health") }],
        errors: &[E::StorageUnavailable, E::InternalError],
        proxy: &[],
    },
    Route {
        path: "/metrics",
        methods: &[Get, Head],
        summary: "Prometheus metrics (the deployment's nginx answers 404: scrape the apps directly)",
        params: &[],
        upload: false,
        answers: &[Answer {
            status: 200,
            description: "OpenMetrics text",
            body: Body::Text("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        }],
        errors: &[E::NotFound, E::InternalError],
        proxy: &[],
    },
];

fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn success(answer: &Answer) -> utoipa::openapi::Response {
    let mut response = ResponseBuilder::new().description(answer.description);
    match answer.body {
        Body::Json(schema) => {
            response =
                response.content("application/json", ContentBuilder::new().schema(Some(schema_ref(schema))).build());
        }
        Body::Image => {
            for format in ImageFormat::ALL {
                response = response.content(format.mime_type(), ContentBuilder::new().build());
            }
        }
        Body::Bytes(types) => {
            for media_type in types {
                response = response.content(*media_type, ContentBuilder::new().build());
            }
        }
        Body::Html => {
            response =
                response.content("text/html; charset=utf-8", ContentBuilder::new().schema(Some(string())).build());
        }
        Body::Text(media_type) => {
            response = response.content(media_type, ContentBuilder::new().schema(Some(string())).build());
        }
        Body::Empty => {}
    }
    response.build()
}

/// One response per status: the codes it stands for, the error body in JSON
/// (or, for browsers, a page).
fn failure(codes: &[&str]) -> utoipa::openapi::Response {
    let listed: Vec<String> = codes.iter().map(|code| format!("`{code}`")).collect();
    ResponseBuilder::new()
        .description(format!("error codes: {}", listed.join(", ")))
        .content("application/json", ContentBuilder::new().schema(Some(schema_ref("ErrorEnvelope"))).build())
        .content("text/html; charset=utf-8", ContentBuilder::new().schema(Some(string())).build())
        .build()
}

fn operation(route: &Route) -> utoipa::openapi::path::Operation {
    let mut operation = OperationBuilder::new().summary(Some(route.summary));
    for param in route.params {
        let required = if matches!(param.location, ParameterIn::Path) { Required::True } else { Required::False };
        operation = operation.parameter(
            ParameterBuilder::new()
                .name(param.name)
                .parameter_in(param.location.clone())
                .required(required)
                .description(Some(param.description))
                .schema(Some((param.schema)())),
        );
    }
    if route.upload {
        let form = ObjectBuilder::new()
            .property(
                "file",
                utoipa::openapi::schema::ArrayBuilder::new().items(
                    ObjectBuilder::new()
                        .schema_type(SchemaType::Type(Type::String))
                        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Binary))),
                ),
            )
            .required("file");
        operation = operation.request_body(Some(
            RequestBodyBuilder::new()
                .content("multipart/form-data", ContentBuilder::new().schema(Some(form)).build())
                .required(Some(Required::True))
                .build(),
        ));
    }
    for answer in route.answers {
        operation = operation.response(answer.status.to_string(), success(answer));
    }
    let mut by_status: std::collections::BTreeMap<u16, Vec<&str>> = std::collections::BTreeMap::new();
    for code in route.errors {
        by_status.entry(code.status()).or_default().push(code.as_str());
    }
    for (status, code) in PROXY_ERROR_CODES {
        if route.proxy.contains(&status) || matches!(status, 502 | 504) || (status == 503 && route.path != "/metrics") {
            by_status.entry(status).or_default().push(code);
        }
    }
    for (status, codes) in by_status {
        operation = operation.response(status.to_string(), failure(&codes));
    }
    operation.build()
}

fn error_envelope() -> Schema {
    let codes: Vec<&str> =
        ErrorCode::all().map(ErrorCode::as_str).chain(PROXY_ERROR_CODES.iter().map(|(_, code)| *code)).collect();
    let body = ObjectBuilder::new()
        .property(
            "code",
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .enum_values(Some(codes))
                .description(Some("picshelf's codes (README, Errors), then those of the deployment's nginx")),
        )
        .required("code")
        .property("message", string())
        .required("message")
        .additional_properties(Some(closed()));
    ObjectBuilder::new().property("error", body).required("error").additional_properties(Some(closed())).into()
}

/// No properties besides the listed ones.
fn closed() -> utoipa::openapi::schema::AdditionalProperties<Schema> {
    utoipa::openapi::schema::AdditionalProperties::FreeForm(false)
}

fn health() -> Schema {
    ObjectBuilder::new()
        .property(
            "status",
            ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).enum_values(Some(["ok", "ready"])),
        )
        .required("status")
        .additional_properties(Some(closed()))
        .into()
}

fn openapi_document() -> Schema {
    ObjectBuilder::new()
        .property("openapi", string())
        .required("openapi")
        .property("paths", ObjectBuilder::new())
        .required("paths")
        .into()
}

/// The contract.
pub fn document() -> OpenApi {
    // Routes that share a path (GET/HEAD and DELETE of a download) merge.
    let mut paths = PathsBuilder::new();
    for route in ROUTES {
        paths = paths.path(route.path, PathItem::from_http_methods(route.methods.iter().cloned(), operation(route)));
    }
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title("picshelf").version(env!("CARGO_PKG_VERSION")).description(Some(
            "A self-hosted image upload service. Paths are as the app serves them; behind the deployment's \
                     nginx, /dev and /test prefix the dev and test environments.",
        )))
        .paths(paths.build())
        .components(Some(
            ComponentsBuilder::new()
                .schema("UploadResponse", UploadResponse::schema())
                .schema("UploadedFile", UploadedFile::schema())
                .schema("ErrorEnvelope", error_envelope())
                .schema("Health", health())
                .schema("OpenApiDocument", openapi_document())
                .build(),
        ))
        .build()
}

/// The contract as a JSON value, built once: it depends on the code alone.
fn value() -> &'static serde_json::Value {
    static VALUE: LazyLock<serde_json::Value> =
        LazyLock::new(|| serde_json::to_value(document()).unwrap_or_else(|e| json!({ "error": e.to_string() })));
    &VALUE
}

/// The contract as served and committed: pretty JSON and a final newline.
pub fn json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        let mut text = serde_json::to_string_pretty(value()).unwrap_or_default();
        text.push('\n');
        text
    });
    &JSON
}

/// One operation of the contract, for the page at `/main/api`.
pub struct OperationSummary {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub parameters: Vec<String>,
    /// (status, what it means, media types)
    pub responses: Vec<(String, String, String)>,
}

/// Every operation of [`document`], in the table's order.
pub fn summaries() -> Vec<OperationSummary> {
    let document = value();
    let mut out = Vec::new();
    for route in ROUTES {
        for method in route.methods {
            let name = match method {
                Get => "GET",
                Head => "HEAD",
                Post => "POST",
                Delete => "DELETE",
                _ => "OTHER",
            };
            let operation = &document["paths"][route.path][name.to_ascii_lowercase()];
            let responses = operation["responses"]
                .as_object()
                .map(|responses| {
                    responses
                        .iter()
                        .map(|(status, response)| {
                            let types = response["content"].as_object().map(|c| c.keys().cloned().collect::<Vec<_>>());
                            let description = response["description"].as_str().unwrap_or_default().to_owned();
                            (status.clone(), description, types.unwrap_or_default().join(", "))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let parameters =
                route.params.iter().map(|p| format!("{} ({}): {}", p.name, location(&p.location), p.description));
            out.push(OperationSummary {
                method: name,
                path: route.path,
                summary: route.summary,
                parameters: parameters.collect(),
                responses,
            });
        }
    }
    out
}

fn location(location: &ParameterIn) -> &'static str {
    match location {
        ParameterIn::Path => "path",
        ParameterIn::Query => "query",
        ParameterIn::Header => "header",
        ParameterIn::Cookie => "cookie",
    }
}

/// `GET`, `HEAD /main/openapi.json`.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .content_type("application/json")
        .body(json())
}

// The answer types name their schemas after themselves.
const _: fn() = || {
    fn named<T: ToSchema>() {}
    named::<UploadResponse>();
    named::<UploadedFile>();
};

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json` is what the code serves: regenerate it with
    /// `cargo run -q -- openapi > docs/openapi.json` and review the difference.
    #[test]
    fn the_committed_document_is_the_served_one() {
        let committed = include_str!("../../docs/openapi.json");
        assert!(
            committed == json(),
            "docs/openapi.json differs from the code's contract: run `cargo run -q -- openapi > docs/openapi.json`"
        );
    }

    #[test]
    fn every_registered_error_code_appears_on_some_route() {
        let used: std::collections::BTreeSet<&str> =
            ROUTES.iter().flat_map(|route| route.errors.iter().map(|code| code.as_str())).collect();
        let missing: Vec<&str> = ErrorCode::all().map(ErrorCode::as_str).filter(|code| !used.contains(code)).collect();
        // 405 answers methods a route does not have: documented in the README, not per operation.
        assert_eq!(missing, ["method_not_allowed"]);
    }

    #[test]
    fn every_status_of_every_route_has_a_response() {
        let document = serde_json::to_value(document()).unwrap();
        let upload = &document["paths"]["/main/upload"]["post"]["responses"];
        for status in ["201", "303", "400", "408", "413", "415", "429", "500", "502", "503", "504"] {
            assert!(upload.get(status).is_some(), "upload lacks {status}");
        }
        let download = &document["paths"]["/main/download/{id}"];
        for method in ["get", "head", "delete"] {
            assert!(download.get(method).is_some(), "download lacks {method}");
        }
        assert_eq!(document["openapi"], "3.1.0");
    }

    #[test]
    fn the_page_lists_every_operation_with_its_statuses() {
        let summaries = summaries();
        let operations: usize = ROUTES.iter().map(|route| route.methods.len()).sum();
        assert_eq!(summaries.len(), operations);
        let upload = summaries.iter().find(|s| s.method == "POST" && s.path == "/main/upload").unwrap();
        let statuses: Vec<&str> = upload.responses.iter().map(|(status, _, _)| status.as_str()).collect();
        assert!(statuses.contains(&"201") && statuses.contains(&"415"), "{statuses:?}");
        assert!(upload.responses.iter().any(|(_, description, _)| description.contains("unsupported_type")));
    }
}
