//! Unsubscribe tokens (SPEC §7c): URL-safe text carrying the recipient id, the mailing id and
//! a key id, signed with HMAC-SHA256 and checked in constant time.
//!
//! Layout before encoding: version (1 byte), key id (4 bytes), the mailing id's length (2
//! bytes, big-endian), the mailing id, the recipient id, then the 32-byte MAC of all of that.
//! The whole is written in unpadded URL-safe base64; a token whose text is not the canonical
//! encoding of its bytes is refused, so no two texts verify as one token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::DispatchError;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const MAC_LEN: usize = 32;
const HEAD_LEN: usize = 1 + 4 + 2;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// Who unsubscribes.
    pub recipient_id: String,
    /// From which mailing.
    pub mailing_id: String,
}

/// One signing key: its id (derived from the secret) and its MAC state.
#[derive(Clone)]
struct Key {
    id: [u8; 4],
    mac: HmacSha256,
}

/// The keys that sign and verify unsubscribe tokens: the first signs, every one verifies
/// (rotation: the new secret first, the old ones after it until their links have aged out).
#[derive(Clone)]
pub struct UnsubscribeKeys {
    keys: Vec<Key>,
}

impl std::fmt::Debug for UnsubscribeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|k| hex(&k.id)).collect();
        f.debug_struct("UnsubscribeKeys")
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl UnsubscribeKeys {
    /// Keys from secrets, the signing one first.
    ///
    /// # Errors
    /// [`DispatchError::Refused`] when there is no secret or one is shorter than 16 bytes.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Result<UnsubscribeKeys, DispatchError> {
        if secrets.is_empty() {
            return Err(DispatchError::Refused(
                "unsubscribe: at least one secret is needed".into(),
            ));
        }
        let keys = secrets
            .iter()
            .map(|secret| {
                let secret = secret.as_ref();
                if secret.len() < 16 {
                    return Err(DispatchError::Refused(
                        "unsubscribe: every secret (and previous secret) needs at least 16 bytes"
                            .into(),
                    ));
                }
                let digest = Sha256::new()
                    .chain_update(b"rassylka unsubscribe key id\0")
                    .chain_update(secret)
                    .finalize();
                let mut id = [0; 4];
                id.copy_from_slice(&digest[..4]);
                let mac = HmacSha256::new_from_slice(secret).map_err(|_| {
                    DispatchError::Refused("unsubscribe: the secret cannot key HMAC".into())
                })?;
                Ok(Key { id, mac })
            })
            .collect::<Result<_, _>>()?;
        Ok(UnsubscribeKeys { keys })
    }

    /// The id of the signing key, as hex.
    pub fn signing_key_id(&self) -> String {
        hex(&self.keys[0].id)
    }

    /// The token of `recipient_id` for `mailing_id`, signed with the first key.
    pub fn sign(&self, mailing_id: &str, recipient_id: &str) -> String {
        let key = &self.keys[0];
        // An id longer than 64 KiB is cut for the length field; such ids do not occur, and
        // the MAC still covers every byte written.
        let mailing = &mailing_id.as_bytes()[..mailing_id.len().min(usize::from(u16::MAX))];
        let mut bytes = Vec::with_capacity(HEAD_LEN + mailing.len() + recipient_id.len() + MAC_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&key.id);
        bytes.extend_from_slice(
            &u16::try_from(mailing.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        bytes.extend_from_slice(mailing);
        bytes.extend_from_slice(recipient_id.as_bytes());
        let mut mac = key.mac.clone();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// What `token` says, if one of the keys signed it.
    ///
    /// # Errors
    /// [`DispatchError::BadToken`] saying what is wrong: not base64, too short, an unknown
    /// version or key, or a signature that does not match.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, DispatchError> {
        let bad = DispatchError::BadToken;
        let bytes = URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .map_err(|_| bad("not a token"))?;
        if URL_SAFE_NO_PAD.encode(&bytes) != token {
            return Err(bad("not a token"));
        }
        if bytes.len() < HEAD_LEN + MAC_LEN {
            return Err(bad("too short"));
        }
        if bytes[0] != VERSION {
            return Err(bad("unknown version"));
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.id == bytes[1..5])
            .ok_or(bad("signed with an unknown key"))?;
        let (signed, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut mac = key.mac.clone();
        mac.update(signed);
        // `verify_slice` compares in constant time.
        mac.verify_slice(tag)
            .map_err(|_| bad("the signature does not match"))?;
        let mailing_len = usize::from(u16::from_be_bytes([signed[5], signed[6]]));
        let rest = &signed[HEAD_LEN..];
        if mailing_len > rest.len() {
            return Err(bad("too short"));
        }
        let (mailing, recipient) = rest.split_at(mailing_len);
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| bad("not UTF-8"));
        Ok(TokenClaims {
            recipient_id: text(recipient)?,
            mailing_id: text(mailing)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(secret: &str) -> UnsubscribeKeys {
        UnsubscribeKeys::new(&[secret]).unwrap()
    }

    #[test]
    fn a_token_carries_the_mailing_and_the_recipient() {
        let keys = keys("0123456789abcdef-secret");
        let token = keys.sign("spring/sale", "c-1001 ü");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.mailing_id, "spring/sale");
        assert_eq!(claims.recipient_id, "c-1001 ü");
        assert!(matches!(keys.verify(""), Err(DispatchError::BadToken(_))));
        assert!(UnsubscribeKeys::new(&["short"]).is_err());
        assert!(UnsubscribeKeys::new::<&str>(&[]).is_err());
    }

    #[test]
    fn rotation_verifies_old_tokens_and_signs_with_the_new_key() {
        let old = keys("the old secret, 32 bytes long..");
        let rotated = UnsubscribeKeys::new(&[
            "the new secret, 32 bytes long..",
            "the old secret, 32 bytes long..",
        ])
        .unwrap();
        let before = old.sign("m-1", "c-1");
        assert_eq!(rotated.verify(&before).unwrap().recipient_id, "c-1");
        let after = rotated.sign("m-1", "c-1");
        assert_ne!(after, before);
        assert!(
            old.verify(&after).is_err(),
            "the old key alone does not know the new"
        );
        assert_ne!(rotated.signing_key_id(), old.signing_key_id());
    }

    proptest! {
        #[test]
        fn any_change_to_any_character_is_refused(
            mailing in "[a-z0-9/-]{1,20}",
            recipient in "\\PC{1,20}",
            position in any::<prop::sample::Index>(),
            replacement in "[A-Za-z0-9_-]",
        ) {
            let keys = keys("a secret of sixteen or more bytes");
            let token = keys.sign(&mailing, &recipient);
            let at = position.index(token.len());
            let mut altered = token.clone();
            altered.replace_range(at..=at, &replacement);
            prop_assume!(altered != token);
            prop_assert!(keys.verify(&altered).is_err());
            // Cut short or lengthened, too.
            prop_assert!(keys.verify(&token[..at]).is_err());
            let longer = format!("{token}{replacement}");
            prop_assert!(keys.verify(&longer).is_err());
        }

        #[test]
        fn any_change_to_any_byte_is_refused(
            recipient in "[a-z0-9-]{1,12}",
            position in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let keys = keys("a secret of sixteen or more bytes");
            let token = keys.sign("m-1", &recipient);
            let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
            let at = position.index(bytes.len());
            bytes[at] ^= flip;
            prop_assert!(keys.verify(&URL_SAFE_NO_PAD.encode(&bytes)).is_err());
        }

        #[test]
        fn tokens_of_one_key_never_verify_under_another(
            first in "[ -~]{16,40}",
            second in "[ -~]{16,40}",
            recipient in "\\PC{1,20}",
        ) {
            prop_assume!(first != second);
            let token = keys(&first).sign("m-1", &recipient);
            prop_assert!(keys(&second).verify(&token).is_err());
        }
    }
}
