//! Delete tokens without a database: the token of an image is an HMAC-SHA256
//! of its id under a server secret (truncated to 128 bits), checked in
//! constant time.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::image::ImageId;

const TOKEN_BYTES: usize = 16;
/// Domain separation: these HMACs mean "may delete this image" and nothing else.
const CONTEXT: &[u8] = b"picshelf delete token v1:";

#[derive(Clone)]
pub struct DeleteTokens {
    secret: SecretString,
}

impl std::fmt::Debug for DeleteTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeleteTokens([redacted])")
    }
}

impl DeleteTokens {
    pub fn new(secret: SecretString) -> Self {
        Self { secret }
    }

    fn mac(&self, id: &ImageId) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.secret.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(CONTEXT);
        mac.update(id.to_string().as_bytes());
        mac
    }

    /// The token handed out with an upload: 32 lowercase hex characters.
    pub fn issue(&self, id: &ImageId) -> String {
        hex::encode(&self.mac(id).finalize().into_bytes()[..TOKEN_BYTES])
    }

    /// Constant-time check of a presented token.
    pub fn verify(&self, id: &ImageId, token: &str) -> bool {
        let Ok(presented) = hex::decode(token.trim()) else { return false };
        presented.len() == TOKEN_BYTES && self.mac(id).verify_truncated_left(&presented).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{IdGenerator, UuidV7Generator};

    fn tokens(secret: &str) -> DeleteTokens {
        DeleteTokens::new(SecretString::from(secret.to_owned()))
    }

    #[test]
    fn a_token_opens_its_own_image_only() {
        let t = tokens("0123456789abcdef0123456789abcdef");
        let (a, b) = (UuidV7Generator.generate(), UuidV7Generator.generate());
        let token = t.issue(&a);
        assert_eq!(token.len(), 32);
        assert!(t.verify(&a, &token));
        assert!(t.verify(&a, &token.to_uppercase()));
        assert!(!t.verify(&b, &token));
        assert!(!t.verify(&a, &token[..31]));
        assert!(!t.verify(&a, ""));
        assert!(!t.verify(&a, "not hex at all"));
    }

    #[test]
    fn another_secret_gives_other_tokens() {
        let id = UuidV7Generator.generate();
        let token = tokens("0123456789abcdef0123456789abcdef").issue(&id);
        assert!(!tokens("fedcba9876543210fedcba9876543210").verify(&id, &token));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        assert!(!format!("{:?}", tokens("0123456789abcdef0123456789abcdef")).contains("0123"));
    }
}
