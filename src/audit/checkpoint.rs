//! Signed checkpoints in the C2SP `tlog-checkpoint` format, signed as a C2SP `signed-note` with
//! Ed25519, so existing transparency-log tooling can read and verify them:
//!
//! ```text
//! <origin>
//! <tree size>
//! <base64 root hash>
//!
//! — <key name> <base64(key id ‖ signature)>
//! ```
//!
//! The key id is the first 4 bytes of SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key), and the
//! verifier key is written `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signer, Verifier};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

const ED25519_ALGORITHM: u8 = 0x01;

/// The checkpoint body: the signed part of the note.
pub fn body(origin: &str, size: u64, root: &Hash) -> String {
    format!("{origin}\n{size}\n{}\n", STANDARD.encode(root))
}

fn key_id(name: &str, public: &ed25519_dalek::VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ED25519_ALGORITHM]);
    hasher.update(public.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The verifier key string for `public` under `name`.
pub fn verifier_key(name: &str, public: &ed25519_dalek::VerifyingKey) -> String {
    let mut key = vec![ED25519_ALGORITHM];
    key.extend_from_slice(public.as_bytes());
    let id: String = key_id(name, public)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{name}+{id}+{}", STANDARD.encode(key))
}

/// Signs a checkpoint; the key name is the origin.
pub fn sign(origin: &str, size: u64, root: &Hash, key: &ed25519_dalek::SigningKey) -> String {
    let body = body(origin, size, root);
    let signature = key.sign(body.as_bytes());
    let mut blob = key_id(origin, &key.verifying_key()).to_vec();
    blob.extend_from_slice(&signature.to_bytes());
    format!("{body}\n\u{2014} {origin} {}\n", STANDARD.encode(blob))
}

/// A checkpoint whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Parses a verifier key string into its name and public key.
pub fn parse_verifier_key(text: &str) -> Result<(String, ed25519_dalek::VerifyingKey), String> {
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(_id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("a verifier key is <name>+<key id>+<key>".into());
    };
    let key = STANDARD
        .decode(key)
        .map_err(|_| "the verifier key is not base64")?;
    let Some((&ED25519_ALGORITHM, bytes)) = key.split_first() else {
        return Err("the verifier key is not an Ed25519 key".into());
    };
    let Ok(bytes) = <[u8; 32]>::try_from(bytes) else {
        return Err("the verifier key is not an Ed25519 key".into());
    };
    let public = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "the verifier key is not a valid Ed25519 key")?;
    Ok((name.to_owned(), public))
}

/// Checks a signed checkpoint against a verifier key and returns what it says.
pub fn verify(note: &str, verifier: &str) -> Result<Checkpoint, String> {
    let (name, public) = parse_verifier_key(verifier)?;
    let (body, signatures) = note
        .split_once("\n\n")
        .ok_or("the checkpoint has no signature block")?;
    let body = format!("{body}\n");
    let wanted_id = key_id(&name, &public);
    let signed = signatures.lines().any(|line| {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return false;
        };
        let Some((signer, blob)) = rest.split_once(' ') else {
            return false;
        };
        let Ok(blob) = STANDARD.decode(blob) else {
            return false;
        };
        signer == name
            && blob.len() == 68
            && blob[..4] == wanted_id
            && ed25519_dalek::Signature::from_slice(&blob[4..])
                .is_ok_and(|signature| public.verify(body.as_bytes(), &signature).is_ok())
    });
    if !signed {
        return Err("the checkpoint signature does not verify with the given key".into());
    }
    let mut lines = body.lines();
    let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
        return Err("the checkpoint body is incomplete".into());
    };
    let size = size
        .parse()
        .map_err(|_| "the checkpoint size is not a number")?;
    let root: Hash = STANDARD
        .decode(root)
        .ok()
        .and_then(|root| root.try_into().ok())
        .ok_or("the checkpoint root is not a base64 SHA-256 hash")?;
    Ok(Checkpoint {
        origin: origin.to_owned(),
        size,
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_checkpoints_verify_and_tampering_is_caught() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let verifier = verifier_key("sinergi/audit", &key.verifying_key());
        let note = sign("sinergi/audit", 42, &[9; 32], &key);
        assert!(note.starts_with("sinergi/audit\n42\n"));
        assert!(note.contains("\n\n\u{2014} sinergi/audit "));
        let checkpoint = verify(&note, &verifier).unwrap();
        assert_eq!(checkpoint.size, 42);
        assert_eq!(checkpoint.root, [9; 32]);

        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert!(verify(&forged, &verifier).is_err());
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        assert!(
            verify(
                &note,
                &verifier_key("sinergi/audit", &other.verifying_key())
            )
            .is_err()
        );
    }

    #[test]
    fn a_verifier_key_without_key_bytes_is_refused() {
        // A server or a command line may hand over any text: none of it may panic the verifier.
        for text in [
            "sinergi/audit+00000000+",
            "sinergi/audit+00000000+AQ==",
            "a+b+AAAA",
        ] {
            assert!(parse_verifier_key(text).is_err(), "{text}");
        }
    }
}
