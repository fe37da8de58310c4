//! What the mirror needs to know about the upstream registry's formats: where a crate file
//! downloads from, and which checksum its index lists.

use serde::Deserialize;

/// The markers cargo substitutes in a registry's `dl` template.
const DL_MARKERS: [&str; 5] = [
    "{crate}",
    "{version}",
    "{prefix}",
    "{lowerprefix}",
    "{sha256-checksum}",
];

/// Returns the URL of a crate file under the upstream's `dl` setting, as cargo builds it: the
/// markers are replaced, and a template without any gets `/{crate}/{version}/download`.
pub(crate) fn download_url(template: &str, name: &str, version: &str, cksum: &str) -> String {
    if !DL_MARKERS.iter().any(|marker| template.contains(marker)) {
        return format!(
            "{}/{name}/{version}/download",
            template.trim_end_matches('/')
        );
    }
    let prefix = name_prefix(name);
    template
        .replace("{crate}", name)
        .replace("{version}", version)
        .replace("{prefix}", &prefix)
        .replace("{lowerprefix}", &prefix.to_ascii_lowercase())
        .replace("{sha256-checksum}", cksum)
}

/// The directory part of a crate's index path, in the name's own case (`{prefix}`).
fn name_prefix(name: &str) -> String {
    match name.len() {
        1 => "1".to_owned(),
        2 => "2".to_owned(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
    }
}

/// The fields of `config.json` the mirror reads.
#[derive(Debug, Deserialize)]
pub(crate) struct UpstreamConfig {
    /// The download template.
    pub(crate) dl: String,
}

/// The fields of an index line the mirror reads.
#[derive(Debug, Deserialize)]
struct LineVersion<'a> {
    name: &'a str,
    vers: &'a str,
    cksum: &'a str,
}

/// Finds `version` of `name` in an index file; returns the name as the index spells it and the
/// SHA-256 the index gives for the crate file. Lines cargo could not read either are skipped.
pub(crate) fn find_version(content: &[u8], name: &str, version: &str) -> Option<(String, String)> {
    content
        .split(|&byte| byte == b'\n')
        .filter_map(|line| serde_json::from_slice::<LineVersion<'_>>(line).ok())
        .find(|line| line.vers == version && line.name.eq_ignore_ascii_case(name))
        .map(|line| (line.name.to_owned(), line.cksum.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_urls_follow_cargo() {
        assert_eq!(
            download_url("https://static.crates.io/crates", "Serde", "1.0.0", "ab"),
            "https://static.crates.io/crates/Serde/1.0.0/download"
        );
        assert_eq!(
            download_url("http://h/dl/", "a", "0.1.0", "ab"),
            "http://h/dl/a/0.1.0/download"
        );
        assert_eq!(
            download_url(
                "https://h/{prefix}/{lowerprefix}/{crate}/{crate}-{version}.crate?c={sha256-checksum}",
                "AbCd",
                "1.2.3",
                "ff"
            ),
            "https://h/Ab/Cd/ab/cd/AbCd/AbCd-1.2.3.crate?c=ff"
        );
        assert_eq!(
            download_url("https://h/{prefix}/{crate}", "Abc", "1.0.0", ""),
            "https://h/3/A/Abc"
        );
        assert_eq!(
            download_url("https://h/{prefix}/{crate}", "x", "1.0.0", ""),
            "https://h/1/x"
        );
    }

    #[test]
    fn versions_are_found_with_their_checksum() {
        let file = concat!(
            r#"{"name":"Foo","vers":"0.1.0","deps":[],"cksum":"AA","features":{},"yanked":false}"#,
            "\n",
            "not json\n",
            r#"{"name":"Foo","vers":"0.2.0","deps":[],"cksum":"bb","features":{},"yanked":true}"#,
            "\n"
        );
        assert_eq!(
            find_version(file.as_bytes(), "foo", "0.1.0"),
            Some(("Foo".to_owned(), "aa".to_owned()))
        );
        assert_eq!(
            find_version(file.as_bytes(), "foo", "0.2.0"),
            Some(("Foo".to_owned(), "bb".to_owned()))
        );
        assert_eq!(find_version(file.as_bytes(), "foo", "0.3.0"), None);
        assert_eq!(find_version(file.as_bytes(), "bar", "0.1.0"), None);
    }
}
