//! Settings that can hold secrets: printed, logged and shown in `--help` without them.

use std::{fmt, str::FromStr};

/// A Postgres URL whose password is never printed.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with the password replaced by `***`, for logs and errors.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                // A password can also hide in the query string (`?password=`).
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k.eq_ignore_ascii_case("password") {
                            "***".to_string()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                if !pairs.is_empty() {
                    url.query_pairs_mut().clear().extend_pairs(pairs);
                }
                url.to_string()
            }
            Err(_) => "<unparseable database url>".to_string(),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
        match url.scheme() {
            "postgres" | "postgresql" => Ok(Self(s.to_string())),
            other => Err(format!("expected a postgres:// URL, got scheme {other:?}")),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A secret setting whose value is never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that compares it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().len() < 16 {
            return Err("use at least 16 characters".into());
        }
        Ok(Self(s.trim().to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The key that seals secrets zeroscale must keep but never show (webhook signing secrets):
/// AES-256-GCM, 32 bytes given as 64 hex characters (`--secrets-key`). Never printed.
#[derive(Clone)]
pub struct SecretsKey([u8; 32]);

impl SecretsKey {
    /// A random key (for the sandbox demo, when none is configured: sealed secrets then do not
    /// survive a restart).
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .expect("the system's random source works");
        Self(key)
    }

    fn aead(&self) -> ring::aead::LessSafeKey {
        let key = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &self.0)
            .expect("a 32-byte AES-256 key");
        ring::aead::LessSafeKey::new(key)
    }

    /// Seals `plain` bound to `context` (it opens only with the same context: a sealed value
    /// copied onto another row does not open): (nonce, ciphertext with its tag).
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut nonce = [0u8; 12];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .expect("the system's random source works");
        let mut buf = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(context),
                &mut buf,
            )
            .expect("sealing a short secret cannot fail");
        (nonce.to_vec(), buf)
    }

    /// Opens what [`SecretsKey::seal`] sealed; None when the key or the context differs or the
    /// data changed.
    pub fn open(&self, nonce: &[u8], sealed: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, ring::aead::Aad::from(context), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

impl FromStr for SecretsKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bytes = hex::decode(s.trim()).map_err(|_| "expected 64 hex characters".to_string())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "expected 64 hex characters (32 bytes)".to_string())?;
        Ok(Self(key))
    }
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod sealing_tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let key = SecretsKey::random();
        let (nonce, sealed) = key.seal(b"whsec_0123456789", b"https://a.example/x");
        assert!(!sealed.windows(6).any(|w| w == b"whsec_"));
        assert_eq!(
            key.open(&nonce, &sealed, b"https://a.example/x").unwrap(),
            b"whsec_0123456789"
        );
        assert!(SecretsKey::random()
            .open(&nonce, &sealed, b"https://a.example/x")
            .is_none());
        assert!(
            key.open(&nonce, &sealed, b"https://b.example/x").is_none(),
            "bound to its row"
        );
        assert!("00".parse::<SecretsKey>().is_err());
        assert_eq!(format!("{key:?}"), "***");
    }
}
