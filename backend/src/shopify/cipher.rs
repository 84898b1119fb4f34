//! Encryption at rest for Shopify access and refresh tokens: AES-256-GCM with a random 96-bit
//! nonce per value, and associated data (such as the shop domain) that binds a sealed value to
//! the record it belongs to.
//!
//! Sealed layout: `version (1 byte, = 1) || nonce (12 bytes) || ciphertext || tag (16 bytes)`.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// The first byte of every sealed value this version writes.
const VERSION: u8 = 1;
/// Length of a key in bytes.
const KEY_BYTES: usize = 32;
/// Length of a nonce in bytes.
const NONCE_BYTES: usize = 12;
/// Length of the authentication tag in bytes.
const TAG_BYTES: usize = 16;

/// Why a key or a sealed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The key text is not standard base64.
    #[error("encryption key is not standard base64 (expected 32 bytes, 44 characters)")]
    KeyNotBase64,
    /// The key decodes to the wrong number of bytes.
    #[error("encryption key is {length} bytes; expected exactly 32 bytes (standard base64)")]
    WrongKeyLength {
        /// How many bytes it decoded to.
        length: usize,
    },
    /// The sealed value is shorter than a version byte, a nonce and a tag.
    #[error("sealed value is {length} bytes; at least 29 are needed")]
    Truncated {
        /// Its length in bytes.
        length: usize,
    },
    /// The sealed value starts with a version byte this code does not know.
    #[error("sealed value has format version {0}; only version 1 is known")]
    UnknownVersion(u8),
    /// Authentication failed: wrong key, wrong associated data, or altered bytes.
    #[error(
        "sealed value failed authentication (wrong key, wrong associated data or altered bytes)"
    )]
    Inauthentic,
}

/// Seals and opens secrets with one AES-256-GCM key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct TokenCipher {
    aead: Aes256Gcm,
}

impl TokenCipher {
    /// A cipher with this 256-bit key.
    pub fn new(key: [u8; KEY_BYTES]) -> Self {
        Self {
            aead: Aes256Gcm::new(&Key::<Aes256Gcm>::from(key)),
        }
    }

    /// A cipher with a key given as standard base64 of 32 bytes (from configuration).
    ///
    /// # Errors
    /// When the text is not standard base64 or does not decode to exactly 32 bytes. The key text
    /// never appears in the error.
    pub fn from_base64(text: &str) -> Result<Self, CipherError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| CipherError::KeyNotBase64)?;
        let key: [u8; KEY_BYTES] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| CipherError::WrongKeyLength {
                    length: bytes.len(),
                })?;
        Ok(Self::new(key))
    }

    /// A fresh random key as standard base64, for `ordernimbus` operators to put in configuration.
    pub fn generate_key_base64() -> String {
        let mut key = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    /// Seals `plaintext`, binding it to `associated_data` (which is authenticated, not stored).
    pub fn encrypt(&self, plaintext: &[u8], associated_data: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: associated_data,
                },
            )
            .expect("AES-GCM seals any plaintext under 64 GiB; tokens are a few hundred bytes");
        let mut sealed = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens a value sealed by [`TokenCipher::encrypt`] with the same key and associated data.
    ///
    /// # Errors
    /// When the value is too short, has an unknown version, or fails authentication.
    pub fn decrypt(&self, sealed: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, CipherError> {
        if sealed.len() < 1 + NONCE_BYTES + TAG_BYTES {
            return Err(CipherError::Truncated {
                length: sealed.len(),
            });
        }
        let (version, rest) = sealed.split_at(1);
        if version[0] != VERSION {
            return Err(CipherError::UnknownVersion(version[0]));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce
            .try_into()
            .expect("split_at(NONCE_BYTES) gives NONCE_BYTES bytes");
        self.aead
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated_data,
                },
            )
            .map_err(|_| CipherError::Inauthentic)
    }
}

impl fmt::Debug for TokenCipher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("TokenCipher(key redacted)")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SHOP: &[u8] = b"acme.myshopify.com";

    fn cipher() -> TokenCipher {
        TokenCipher::new([7; 32])
    }

    #[test]
    fn a_sealed_token_opens_with_the_same_key_and_associated_data() {
        let sealed = cipher().encrypt(b"shpat_secret_token", SHOP);
        assert_eq!(sealed[0], 1);
        assert_eq!(sealed.len(), 1 + 12 + 18 + 16);
        assert_eq!(
            cipher().decrypt(&sealed, SHOP).unwrap(),
            b"shpat_secret_token"
        );
    }

    #[test]
    fn wrong_associated_data_is_refused() {
        let sealed = cipher().encrypt(b"shpat_secret_token", SHOP);
        assert_eq!(
            cipher().decrypt(&sealed, b"evil.myshopify.com"),
            Err(CipherError::Inauthentic)
        );
        assert_eq!(
            cipher().decrypt(&sealed, b""),
            Err(CipherError::Inauthentic)
        );
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let sealed = cipher().encrypt(b"token", SHOP);
        for index in 1..sealed.len() {
            let mut altered = sealed.clone();
            altered[index] ^= 0x01;
            assert_eq!(
                cipher().decrypt(&altered, SHOP),
                Err(CipherError::Inauthentic),
                "byte {index}"
            );
        }
        let mut altered_version = sealed.clone();
        altered_version[0] = 2;
        assert_eq!(
            cipher().decrypt(&altered_version, SHOP),
            Err(CipherError::UnknownVersion(2))
        );
    }

    #[test]
    fn a_different_key_is_refused() {
        let sealed = cipher().encrypt(b"token", SHOP);
        assert_eq!(
            TokenCipher::new([8; 32]).decrypt(&sealed, SHOP),
            Err(CipherError::Inauthentic)
        );
    }

    #[test]
    fn sealing_the_same_plaintext_twice_gives_different_bytes() {
        let cipher = cipher();
        assert_ne!(
            cipher.encrypt(b"token", SHOP),
            cipher.encrypt(b"token", SHOP)
        );
    }

    #[test]
    fn truncated_values_are_refused_with_their_length() {
        let sealed = cipher().encrypt(b"", SHOP);
        assert_eq!(sealed.len(), 29);
        assert_eq!(cipher().decrypt(&sealed, SHOP).unwrap(), b"");
        assert_eq!(
            cipher()
                .decrypt(&sealed[..28], SHOP)
                .unwrap_err()
                .to_string(),
            "sealed value is 28 bytes; at least 29 are needed"
        );
        assert_eq!(
            cipher().decrypt(&[], SHOP),
            Err(CipherError::Truncated { length: 0 })
        );
    }

    #[test]
    fn keys_are_read_from_standard_base64_of_32_bytes() {
        let text = TokenCipher::generate_key_base64();
        assert_eq!(text.len(), 44);
        let first = TokenCipher::from_base64(&text).unwrap();
        let second = TokenCipher::from_base64(&format!("{text}\n")).unwrap();
        assert_eq!(
            second.decrypt(&first.encrypt(b"x", b""), b"").unwrap(),
            b"x"
        );
        assert_ne!(text, TokenCipher::generate_key_base64());
    }

    #[test]
    fn bad_key_text_says_what_is_expected() {
        assert_eq!(
            TokenCipher::from_base64(&STANDARD.encode([1u8; 16]))
                .unwrap_err()
                .to_string(),
            "encryption key is 16 bytes; expected exactly 32 bytes (standard base64)"
        );
        assert_eq!(
            TokenCipher::from_base64("not base64!")
                .unwrap_err()
                .to_string(),
            "encryption key is not standard base64 (expected 32 bytes, 44 characters)"
        );
        let url_safe = "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8=";
        assert!(matches!(
            TokenCipher::from_base64(url_safe),
            Err(CipherError::KeyNotBase64)
        ));
    }

    #[test]
    fn debug_never_shows_the_key() {
        assert_eq!(format!("{:?}", cipher()), "TokenCipher(key redacted)");
    }

    proptest! {
        #[test]
        fn any_plaintext_and_associated_data_round_trip(
            plaintext in proptest::collection::vec(any::<u8>(), 0..512),
            associated_data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let cipher = cipher();
            let sealed = cipher.encrypt(&plaintext, &associated_data);
            prop_assert_eq!(cipher.decrypt(&sealed, &associated_data).unwrap(), plaintext);
        }
    }
}
