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
    let prefix = ktra_core::index::index_prefix(name);
    template
        .replace("{crate}", name)
        .replace("{version}", version)
        .replace("{prefix}", &prefix)
        .replace("{lowerprefix}", &prefix.to_ascii_lowercase())
        .replace("{sha256-checksum}", cksum)
}

/// The fields of `config.json` the mirror reads.
#[derive(Debug, Deserialize)]
pub(crate) struct UpstreamConfig {
    /// The download template.
    pub(crate) dl: String,
}

/// Reads an upstream `config.json`, which is usable only with an http(s) `dl`.
///
/// # Errors
///
/// Says why the file is unusable.
pub(crate) fn parse_config(content: &[u8]) -> Result<UpstreamConfig, String> {
    let config = serde_json::from_slice::<UpstreamConfig>(content)
        .map_err(|error| format!("config.json: {error}"))?;
    if !(config.dl.starts_with("https://") || config.dl.starts_with("http://")) {
        return Err(format!(
            "config.json: `dl` is not an http(s) URL: {}",
            config.dl
        ));
    }
    Ok(config)
}

/// The field of an index line that says which crate it belongs to.
#[derive(Debug, Deserialize)]
struct LineName<'a> {
    name: &'a str,
}

/// Checks that an upstream answer is `name`'s index file before it replaces a cached copy: at
/// least one line, and every non-empty line a JSON object whose `name` is `name` (ignoring
/// case; the file's path is the lowercased name, so another spelling lives elsewhere). A
/// captive portal's HTML or a proxy's error page fails this.
///
/// # Errors
///
/// Says what is wrong with the first bad line.
pub(crate) fn check_index_file(content: &[u8], name: &str) -> Result<(), String> {
    let mut lines = 0_usize;
    for (number, line) in content.split(|&byte| byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines += 1;
        match serde_json::from_slice::<LineName<'_>>(line) {
            Ok(line) if line.name.eq_ignore_ascii_case(name) => {}
            Ok(line) => {
                return Err(format!(
                    "line {} names crate `{}`, not `{name}`",
                    number + 1,
                    line.name
                ));
            }
            Err(error) => return Err(format!("line {} is not an index line: {error}", number + 1)),
        }
    }
    if lines == 0 {
        return Err("the index file is empty".to_owned());
    }
    Ok(())
}

/// Returns whether `cksum` is a SHA-256 in hex, as an index's `cksum` must be.
pub(crate) fn is_sha256_hex(cksum: &str) -> bool {
    cksum.len() == 64 && cksum.bytes().all(|byte| byte.is_ascii_hexdigit())
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

    #[test]
    fn only_index_files_of_the_crate_pass_the_check() {
        let line =
            r#"{"name":"Foo","vers":"0.1.0","deps":[],"cksum":"aa","features":{},"yanked":false}"#;
        assert!(check_index_file(format!("{line}\n{line}\n").as_bytes(), "foo").is_ok());
        assert!(check_index_file(line.as_bytes(), "foo").is_ok());
        for bad in [
            "<html><body>Log in to the Wi-Fi</body></html>\n".to_owned(),
            format!("{line}\nnot json\n"),
            line.replace("Foo", "bar"),
            String::new(),
            "\n\n".to_owned(),
            "[1,2]\n".to_owned(),
        ] {
            assert!(check_index_file(bad.as_bytes(), "foo").is_err(), "{bad}");
        }
    }

    #[test]
    fn checksums_are_64_hex_digits() {
        assert!(is_sha256_hex(&"aB".repeat(32)));
        for bad in [
            "",
            "ab",
            &"a".repeat(63),
            &"a".repeat(65),
            &"g".repeat(64),
            &format!("{}/..", "a".repeat(61)),
        ] {
            assert!(!is_sha256_hex(bad), "{bad}");
        }
    }

    #[test]
    fn config_json_needs_an_http_dl() {
        assert_eq!(
            parse_config(br#"{"dl":"https://static.crates.io/crates","api":"https://crates.io"}"#)
                .unwrap()
                .dl,
            "https://static.crates.io/crates"
        );
        assert!(parse_config(br#"{"dl":"http://h/{crate}"}"#).is_ok());
        for bad in [
            &b"<html>portal</html>"[..],
            br#"{"api":"https://crates.io"}"#,
            br#"{"dl":"file:///etc"}"#,
            br#"{"dl":""}"#,
        ] {
            assert!(
                parse_config(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
