//! HTTP plumbing shared by the routes: content negotiation, conditional and
//! range requests, public URLs and request ids.

pub mod conditional;
pub mod forwarded;
pub mod negotiate;
pub mod one_at_a_time;
pub mod public_url;
pub mod range;
pub mod request_id;
pub mod server;
