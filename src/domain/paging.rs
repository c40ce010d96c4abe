//! Paging as in Google AIP-158: a bounded page size and an opaque token that resumes after the
//! last item returned. Tokens carry the keyset position (not an offset), so inserts during paging
//! never cause duplicates or gaps, and a fingerprint of the filters they were issued for.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The number of items to return: 0 picks the default, anything above the maximum is capped.
pub fn page_size(requested: i32) -> Result<u32, String> {
    match u32::try_from(requested) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
        Err(_) => Err("page_size may not be negative".into()),
    }
}

#[derive(Serialize, Deserialize)]
struct TokenBody<C> {
    /// Truncated SHA-256 of the filter fingerprint.
    f: String,
    /// Where the next page starts.
    c: C,
}

fn filter_digest(fingerprint: &str) -> String {
    let digest = Sha256::digest(fingerprint.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A token that resumes after `cursor` for the filters described by `fingerprint`.
pub fn encode_token<C: Serialize>(fingerprint: &str, cursor: &C) -> String {
    let body = TokenBody {
        f: filter_digest(fingerprint),
        c: cursor,
    };
    // Serialising plain data structs to JSON cannot fail.
    let json = serde_json::to_vec(&body).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The cursor in `token`, or `None` for an empty token (the first page).
pub fn decode_token<C: DeserializeOwned>(
    token: &str,
    fingerprint: &str,
) -> Result<Option<C>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    let body: TokenBody<C> = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or("page_token is not a token this service issued")?;
    if body.f != filter_digest(fingerprint) {
        return Err("page_token was issued for different filters; \
                    repeat the request with the same filters or start without a token"
            .into());
    }
    Ok(Some(body.c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_and_cap() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(7), Ok(7));
        assert_eq!(page_size(5000), Ok(MAX_PAGE_SIZE));
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn tokens_round_trip_and_bind_to_their_filters() {
        let token = encode_token("list|33", &("abc".to_owned(), 7));
        let cursor: Option<(String, i32)> = decode_token(&token, "list|33").unwrap();
        assert_eq!(cursor, Some(("abc".to_owned(), 7)));
        assert!(decode_token::<(String, i32)>(&token, "list|36").is_err());
        assert!(decode_token::<(String, i32)>("garbage!", "list|33").is_err());
        assert_eq!(decode_token::<(String, i32)>("", "list|33"), Ok(None));
    }
}
