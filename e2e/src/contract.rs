//! The published contract, enforced on every answer: the suite's client
//! ([`Client`]) reads each response whole and checks it against the OpenAPI
//! document the service serves at `/main/openapi.json` before a test sees it:
//!
//! - the path and method are in the document (else the answer must be the
//!   documented 404 / 405 error body);
//! - the status is one the operation lists;
//! - the content type is one the response lists (none listed: no body);
//! - a JSON body validates against the response's schema (JSON Schema
//!   2020-12, the document's `components` resolving its `$ref`s).
//!
//! A breach panics with the request, the answer and what was wrong, so a
//! change that breaks the contract fails even where no test looked.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// Environment prefixes of the deployment's nginx, stripped before matching.
const PREFIXES: [&str; 2] = ["/dev", "/test"];

pub struct Contract {
    document: Value,
}

/// What one answer looked like, for the contract.
pub struct Exchange<'a> {
    pub method: &'a str,
    /// The URL's path, without the base URL's or the environment's prefix.
    pub path: &'a str,
    pub status: u16,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl Contract {
    pub fn new(document: Value) -> Self {
        Self { document }
    }

    /// The document served under `base_url`, fetched once per test binary.
    pub async fn served(base_url: &str) -> Arc<Contract> {
        static CONTRACT: OnceCell<Arc<Contract>> = OnceCell::const_new();
        CONTRACT
            .get_or_init(|| async {
                let url = format!("{base_url}/main/openapi.json");
                let response = reqwest::get(&url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
                assert_eq!(response.status(), 200, "GET {url}");
                let document = response.json().await.unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"));
                Arc::new(Contract::new(document))
            })
            .await
            .clone()
    }

    /// `path` as the app sees it: without an environment prefix or a query.
    pub fn app_path(path: &str) -> &str {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        PREFIXES
            .iter()
            .find_map(|prefix| path.strip_prefix(prefix).filter(|rest| rest.starts_with('/')))
            .unwrap_or(path)
    }

    /// Every way `exchange` breaks the contract (empty: it keeps it).
    pub fn breaches(&self, exchange: &Exchange) -> Vec<String> {
        let method = exchange.method.to_ascii_lowercase();
        let Some(item) = self.path_item(exchange.path) else {
            return self.undocumented(exchange, 404, "not_found");
        };
        let Some(operation) = item.get(&method) else {
            return self.undocumented(exchange, 405, "method_not_allowed");
        };
        let status = exchange.status.to_string();
        let Some(response) = operation["responses"].get(&status).or_else(|| operation["responses"].get("default"))
        else {
            let listed: Vec<&String> =
                operation["responses"].as_object().map(|r| r.keys().collect()).unwrap_or_default();
            return vec![format!("status {status} is not among the documented {listed:?}")];
        };
        self.check_response(exchange, response)
    }

    /// An answer outside the document's paths and methods is the error the
    /// README promises for them: `status` with the error body.
    fn undocumented(&self, exchange: &Exchange, status: u16, code: &str) -> Vec<String> {
        if exchange.status != status {
            return vec![format!(
                "{} {} is not in the document, yet the answer is {}",
                exchange.method, exchange.path, exchange.status
            )];
        }
        let error = json!({
            "description": "undocumented path or method",
            "content": {
                "application/json": { "schema": { "$ref": "#/components/schemas/ErrorEnvelope" } },
                "text/html; charset=utf-8": { "schema": { "type": "string" } }
            }
        });
        let mut breaches = self.check_response(exchange, &error);
        if is_json(exchange.content_type) && !exchange.body.is_empty() {
            let code_sent = serde_json::from_slice::<Value>(exchange.body).ok().map(|v| v["error"]["code"].clone());
            if code_sent != Some(Value::from(code)) {
                breaches.push(format!("a {status} for an undocumented path or method should carry code {code}"));
            }
        }
        breaches
    }

    fn check_response(&self, exchange: &Exchange, response: &Value) -> Vec<String> {
        let content = response.get("content").and_then(Value::as_object);
        let Some(content) = content.filter(|c| !c.is_empty()) else {
            return if exchange.body.is_empty() {
                Vec::new()
            } else {
                vec![format!("status {} documents no body, yet {} bytes came", exchange.status, exchange.body.len())]
            };
        };
        let Some(content_type) = exchange.content_type else {
            return if exchange.body.is_empty() && exchange.method == "HEAD" {
                Vec::new()
            } else {
                vec![format!("no Content-Type, documented: {:?}", content.keys().collect::<Vec<_>>())]
            };
        };
        let Some(media) = content.iter().find(|(listed, _)| same_media_type(listed, content_type)).map(|(_, m)| m)
        else {
            return vec![format!("Content-Type {content_type} is not among {:?}", content.keys().collect::<Vec<_>>())];
        };
        if !is_json(Some(content_type)) || exchange.method == "HEAD" {
            return Vec::new();
        }
        let Some(schema) = media.get("schema") else { return Vec::new() };
        let body: Value = match serde_json::from_slice(exchange.body) {
            Ok(body) => body,
            Err(e) => return vec![format!("the body is not JSON: {e}")],
        };
        self.schema_breaches(schema, &body)
    }

    /// `body` against `schema`, with the document's components beside it.
    fn schema_breaches(&self, schema: &Value, body: &Value) -> Vec<String> {
        let mut rooted = schema.clone();
        if let Some(object) = rooted.as_object_mut() {
            object.insert("components".into(), self.document["components"].clone());
        }
        let validator = match jsonschema::draft202012::new(&rooted) {
            Ok(validator) => validator,
            Err(e) => return vec![format!("the document's schema does not compile: {e}")],
        };
        validator.iter_errors(body).map(|e| format!("body at {}: {e}", e.instance_path())).collect()
    }

    /// The path item whose template matches `path` (`{name}`: one segment).
    fn path_item(&self, path: &str) -> Option<&Value> {
        let paths = self.document["paths"].as_object()?;
        paths.iter().find(|(template, _)| template_matches(template, path)).map(|(_, item)| item)
    }
}

fn template_matches(template: &str, path: &str) -> bool {
    let (template, path): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template.iter().zip(&path).all(|(t, p)| if t.starts_with('{') { !p.is_empty() } else { t == p })
}

fn essence(media_type: &str) -> String {
    media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

fn same_media_type(listed: &str, sent: &str) -> bool {
    essence(listed) == essence(sent)
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| essence(c) == "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        let document = serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
        Contract::new(document)
    }

    fn exchange<'a>(method: &'a str, path: &'a str, status: u16, content_type: &'a str, body: &'a str) -> Exchange<'a> {
        let content_type = (!content_type.is_empty()).then_some(content_type);
        Exchange { method, path, status, content_type, body: body.as_bytes() }
    }

    const ID: &str = "/main/download/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn prefixes_and_queries_are_not_part_of_the_path() {
        assert_eq!(Contract::app_path("/dev/main/upload?x=1"), "/main/upload");
        assert_eq!(Contract::app_path("/test"), "/test");
        assert_eq!(Contract::app_path("/developer/x"), "/developer/x");
    }

    #[test]
    fn answers_that_keep_the_contract_pass() {
        let contract = contract();
        let error = r#"{"error":{"code":"not_found","message":"no such image"}}"#;
        assert_eq!(contract.breaches(&exchange("GET", ID, 404, "application/json", error)), Vec::<String>::new());
        assert!(contract.breaches(&exchange("GET", ID, 200, "image/png", "\u{89}PNG")).is_empty());
        assert!(contract.breaches(&exchange("HEAD", ID, 200, "image/png", "")).is_empty());
        assert!(contract.breaches(&exchange("GET", "/nothing", 404, "application/json", error)).is_empty());
        let upload = r#"{"files":[{"id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","url":"http://x/main/download/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "size":3,"content_type":"image/png","width":1,"height":1,"sha256":"0000000000000000000000000000000000000000000000000000000000000000",
            "delete_token":"t","file_name":null,"metadata_removed":[],"message":"ok"}]}"#;
        assert!(contract.breaches(&exchange("POST", "/main/upload", 201, "application/json", upload)).is_empty());
    }

    #[test]
    fn answers_that_break_it_are_caught() {
        let contract = contract();
        let error = r#"{"error":{"code":"not_found","message":"no such image"}}"#;
        // A status the route does not list.
        assert!(!contract.breaches(&exchange("GET", ID, 201, "application/json", error)).is_empty());
        // A content type it does not list.
        assert!(!contract.breaches(&exchange("GET", ID, 200, "text/html", "<p>")).is_empty());
        // A body off the schema: an unknown code, a missing message, an extra field.
        let unknown = r#"{"error":{"code":"oops","message":"m"}}"#;
        assert!(!contract.breaches(&exchange("GET", ID, 404, "application/json", unknown)).is_empty());
        let incomplete = r#"{"error":{"code":"not_found"}}"#;
        assert!(!contract.breaches(&exchange("GET", ID, 404, "application/json", incomplete)).is_empty());
        let extra = r#"{"error":{"code":"not_found","message":"m"},"x":1}"#;
        assert!(!contract.breaches(&exchange("GET", ID, 404, "application/json", extra)).is_empty());
        // An upload answer without a field the schema requires.
        let upload = r#"{"files":[{"id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}]}"#;
        assert!(!contract.breaches(&exchange("POST", "/main/upload", 201, "application/json", upload)).is_empty());
        // An undocumented path that answers anything but a 404.
        assert!(!contract.breaches(&exchange("GET", "/nothing", 200, "text/plain", "hi")).is_empty());
        // A body where none is documented.
        assert!(!contract.breaches(&exchange("DELETE", ID, 204, "", "x")).is_empty());
    }
}
