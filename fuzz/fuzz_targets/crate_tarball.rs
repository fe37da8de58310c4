//! Arbitrary bytes as a `.crate` file for `demo@1.0.0`. Whatever the validator accepts must
//! satisfy `assert_accepted_tarball` and stay accepted under larger limits; a refusal for size
//! or file count must be true of the bytes.
#![no_main]

use ktra_fuzz::{
    MAX_FILES, MAX_UNPACKED_BYTES, NAME, VERSION, assert_accepted_tarball, readable_entries,
    unpacked_len_at_least,
};
use ktra_publish::tarball::{TarballError, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|crate_file: &[u8]| {
    match validate(crate_file, NAME, VERSION, MAX_UNPACKED_BYTES, MAX_FILES) {
        Ok(_) => {
            assert_accepted_tarball(crate_file, NAME, VERSION, MAX_UNPACKED_BYTES, MAX_FILES);
            assert!(
                validate(
                    crate_file,
                    NAME,
                    VERSION,
                    2 * MAX_UNPACKED_BYTES,
                    2 * MAX_FILES
                )
                .is_ok(),
                "accepted under some limits but refused under larger ones"
            );
        }
        Err(TarballError::TooLarge(limit)) => {
            assert_eq!(limit, MAX_UNPACKED_BYTES);
            assert!(
                unpacked_len_at_least(crate_file, limit + 1),
                "refused as too large but unpacks within {limit} bytes"
            );
        }
        Err(TarballError::TooManyFiles(limit)) => {
            assert_eq!(limit, MAX_FILES);
            assert!(readable_entries(crate_file, limit + 1) > limit);
        }
        Err(TarballError::Unreadable(message)) => {
            // The size limit surfaces as an I/O error inside tar; it must still be reported
            // as `TooLarge`, not as an unreadable file.
            assert!(
                !message.contains(&TarballError::TooLarge(MAX_UNPACKED_BYTES).to_string()),
                "size limit reported as unreadable: {message}"
            );
        }
        Err(_) => {}
    }
});
