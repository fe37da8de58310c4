//! Brings index files written by earlier releases to today's line format.
//!
//! Earlier releases wrote every unset dependency key as `null` (`"target": null`,
//! `"registry": null`, `"package": null`). Cargo reads those, but `tame-index`, and so
//! cargo-deny, refuses `"package": null`: every crate with a dependency was unreadable to it.
//! At start each replica rewrites such files through the store's compare-and-set replacement;
//! a replaced file is marked unacknowledged like a publish, so the resender brings the git
//! index along. Files already in today's format are only read.

use ktra_core::index::IndexLine;
use ktra_core::name::CrateId;
use ktra_store::model::IndexFile;
use ktra_store::{MetadataStore, StoreError};

/// Crate names read from the store at a time.
const PAGE: usize = 512;

/// How often one crate is retried when publishes keep moving its revision.
const ATTEMPTS: usize = 3;

/// What a `null` value looks like inside an index line: no key or string value can end with
/// an unescaped quote followed by `:null`, so this finds JSON nulls only.
const NULL_VALUE: &[u8] = b"\":null";

/// Rewrites every index file that holds a `null` value. Returns how many were rewritten.
///
/// # Errors
///
/// Fails when the store fails; files rewritten before that stay rewritten.
pub async fn drop_null_keys(store: &dyn MetadataStore) -> Result<usize, StoreError> {
    let mut rewritten = 0;
    let mut after = None;
    loop {
        let names = store.crate_names(after.as_ref(), PAGE).await?;
        let Some(last) = names.last().cloned() else {
            return Ok(rewritten);
        };
        for krate in &names {
            if rewrite_one(store, krate).await? {
                rewritten += 1;
            }
        }
        after = Some(last);
    }
}

/// Rewrites one crate's file if it holds a `null`; returns whether it did.
async fn rewrite_one(store: &dyn MetadataStore, krate: &CrateId) -> Result<bool, StoreError> {
    for _ in 0..ATTEMPTS {
        let Some(file) = store.index_file(krate).await? else {
            return Ok(false);
        };
        let Some(content) = without_nulls(&file) else {
            return Ok(false);
        };
        if content == file.content {
            // The pattern was inside a string value: nothing to rewrite.
            return Ok(false);
        }
        if store
            .replace_index_file(krate, file.revision, content.into())
            .await?
            .is_some()
        {
            return Ok(true);
        }
    }
    tracing::warn!(
        crate_name = %krate,
        "the index file kept changing; its null keys stay until the next start"
    );
    Ok(false)
}

/// Returns the file re-serialized line by line when it holds a `null`, `None` when it needs
/// nothing (or holds a line that is not ours to rewrite, which is logged).
fn without_nulls(file: &IndexFile) -> Option<Vec<u8>> {
    if !file
        .content
        .windows(NULL_VALUE.len())
        .any(|window| window == NULL_VALUE)
    {
        return None;
    }
    let mut content = Vec::with_capacity(file.content.len());
    for line in file.content.split(|byte| *byte == b'\n') {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<IndexLine>(line) {
            Ok(parsed) => {
                content.extend_from_slice(parsed.to_json().as_bytes());
                content.push(b'\n');
            }
            Err(error) => {
                tracing::warn!(crate_name = %file.krate, %error, "an index line does not parse; its file is left as it is");
                return None;
            }
        }
    }
    Some(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &str) -> IndexFile {
        IndexFile {
            krate: CrateId::new("demo").unwrap(),
            content: bytes::Bytes::from(content.to_owned()),
            last_modified: chrono::Utc::now(),
            revision: 1,
        }
    }

    #[test]
    fn drops_null_keys_and_keeps_the_rest() {
        let old = concat!(
            r#"{"name":"demo","vers":"0.1.0","deps":[],"cksum":"aa","features":{},"yanked":false}"#,
            "\n",
            r#"{"name":"demo","vers":"0.2.0","deps":[{"name":"b","req":"^1","features":[],"optional":false,"default_features":true,"target":null,"kind":"normal","registry":null,"package":null}],"cksum":"bb","features":{"nullable":[]},"yanked":true}"#,
            "\n",
        );
        let new = without_nulls(&file(old)).expect("the file holds nulls");
        assert_eq!(
            String::from_utf8(new).unwrap(),
            concat!(
                r#"{"name":"demo","vers":"0.1.0","deps":[],"cksum":"aa","features":{},"yanked":false}"#,
                "\n",
                r#"{"name":"demo","vers":"0.2.0","deps":[{"name":"b","req":"^1","features":[],"optional":false,"default_features":true,"kind":"normal"}],"cksum":"bb","features":{"nullable":[]},"yanked":true}"#,
                "\n",
            )
        );
    }

    #[test]
    fn leaves_files_without_nulls_alone() {
        let current = concat!(
            r#"{"name":"demo","vers":"0.1.0","deps":[],"cksum":"aa","features":{"nullable":["null"]},"yanked":false}"#,
            "\n"
        );
        assert!(without_nulls(&file(current)).is_none());
    }
}
