//! Index files this registry did not write.
//!
//! Pointed at a remote that already holds another registry's index (Ktra's, say), the first
//! publish of one of its crates would replace the crate's file with the store's, which knows
//! only the new version: every version published elsewhere would vanish from the index, and
//! lock files pinning them would break. So a crate file the indexer has never written is
//! replaced only when the new content keeps every version the old one lists; otherwise the
//! file is refused, left as it is, and the operator is told to import the index first
//! (`ktra-api import`) or to allow the overwrite explicitly (`KTRA_GIT_OVERWRITE_FOREIGN_FILES`).

use std::collections::HashSet;

/// The key that starts a version in an index line; versions hold no quote or backslash.
const VERS_KEY: &[u8] = b"\"vers\":\"";

/// Returns the versions `existing` lists that `wanted` lacks, in the order of `existing`.
pub fn dropped_versions(existing: &[u8], wanted: &[u8]) -> Vec<String> {
    let kept: HashSet<&[u8]> = versions(wanted).collect();
    versions(existing)
        .filter(|version| !kept.contains(version))
        .map(|version| String::from_utf8_lossy(version).into_owned())
        .collect()
}

/// Explains a refusal: the crate, what would be lost, and what to do.
pub fn refusal(name: &str, dropped: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut listed = dropped
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if dropped.len() > SHOWN {
        listed.push_str(&format!(" and {} more", dropped.len() - SHOWN));
    }
    format!(
        "the git index already holds crate `{name}` with versions this registry does not \
         have ({listed}); it was not written by this registry: import it first with \
         `ktra-api import`, or set KTRA_GIT_OVERWRITE_FOREIGN_FILES=true to replace such files"
    )
}

/// Each line's `vers` value.
fn versions(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    content.split(|byte| *byte == b'\n').filter_map(|line| {
        let start = line
            .windows(VERS_KEY.len())
            .position(|window| window == VERS_KEY)?
            + VERS_KEY.len();
        let length = line[start..].iter().position(|byte| *byte == b'"')?;
        Some(&line[start..start + length])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KTRA_LINES: &str = concat!(
        r#"{"name":"old","vers":"0.1.0","deps":[],"cksum":"aa","features":{},"yanked":false,"links":null}"#,
        "\n",
        r#"{"name":"old","vers":"0.2.0","deps":[],"cksum":"bb","features":{},"yanked":true,"links":null}"#,
        "\n",
    );

    #[test]
    fn a_file_that_keeps_every_version_drops_nothing() {
        let ours = format!(
            "{}{}\n",
            KTRA_LINES.replace("\"yanked\":true", "\"yanked\":false"),
            r#"{"name":"old","vers":"0.3.0","deps":[],"cksum":"cc","features":{},"yanked":false}"#
        );
        assert!(dropped_versions(KTRA_LINES.as_bytes(), ours.as_bytes()).is_empty());
    }

    #[test]
    fn a_file_that_forgets_versions_names_them() {
        let ours = concat!(
            r#"{"name":"old","vers":"0.3.0","deps":[],"cksum":"cc","features":{"vers":[]},"yanked":false}"#,
            "\n"
        );
        assert_eq!(
            dropped_versions(KTRA_LINES.as_bytes(), ours.as_bytes()),
            ["0.1.0", "0.2.0"]
        );
        let message = refusal("old", &["0.1.0".to_owned(), "0.2.0".to_owned()]);
        assert!(message.contains("(0.1.0, 0.2.0)"), "{message}");
        assert!(message.contains("ktra-api import"), "{message}");
    }

    #[test]
    fn long_lists_are_cut() {
        let dropped: Vec<String> = (0..8).map(|minor| format!("0.{minor}.0")).collect();
        let message = refusal("many", &dropped);
        assert!(message.contains("0.4.0 and 3 more"), "{message}");
    }
}
