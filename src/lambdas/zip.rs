//! Byte-identical zips for identical code: the Lambda's `CodeSha256` is compared with ours to skip an upload.

use std::io::Write;

use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// A zip holding only `bootstrap`, mode 0755, with a fixed timestamp and no extra fields.
pub(crate) fn deterministic_zip(bootstrap: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut w = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(DateTime::default())
        .unix_permissions(0o755);
    w.start_file("bootstrap", options)?;
    w.write_all(bootstrap)?;
    Ok(w.finish()?.into_inner())
}

/// What Lambda reports as `CodeSha256`: the base64 SHA-256 of the zip.
pub(crate) fn code_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_code_same_bytes_and_a_runnable_entry() {
        let code = b"\x7fELF pretend binary".repeat(1000);
        let a = deterministic_zip(&code).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = deterministic_zip(&code).unwrap();
        assert_eq!(
            a, b,
            "identical code gives identical bytes, whenever it is zipped"
        );
        assert_ne!(
            code_sha256(&a),
            code_sha256(&deterministic_zip(b"other").unwrap())
        );
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        assert_eq!(archive.len(), 1);
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        assert!(entry.compressed_size() < code.len() as u64);
    }

    #[test]
    fn code_sha256_is_base64_of_sha256() {
        // printf '' | sha256sum | xxd -r -p | base64
        assert_eq!(
            code_sha256(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
