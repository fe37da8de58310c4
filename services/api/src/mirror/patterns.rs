//! Which crates may pass through the mirror: allow and deny lists of name patterns.

use ktra_core::name::canonical_crate_name;

/// Allow and deny patterns over crate names. `*` matches any run of characters, `?` one
/// character; case and the difference between `-` and `_` are ignored, as crate names ignore
/// them. A name matching a deny pattern is refused; otherwise an empty allow list admits every
/// name and a non-empty one only the names it matches.
#[derive(Debug, Clone, Default)]
pub struct CratePatterns {
    allow: Vec<String>,
    deny: Vec<String>,
}

impl CratePatterns {
    /// Builds the lists from the configured patterns (blank entries are ignored).
    pub fn new(allow: &[String], deny: &[String]) -> Self {
        let normalise = |patterns: &[String]| {
            patterns
                .iter()
                .map(|pattern| canonical_crate_name(pattern.trim()))
                .filter(|pattern| !pattern.is_empty())
                .collect()
        };
        Self {
            allow: normalise(allow),
            deny: normalise(deny),
        }
    }

    /// Returns whether `name` may be mirrored.
    pub fn permits(&self, name: &str) -> bool {
        let name = canonical_crate_name(name);
        let matches = |pattern: &String| glob_matches(pattern.as_bytes(), name.as_bytes());
        if self.deny.iter().any(matches) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(matches)
    }
}

/// Matches `name` against a pattern of literal bytes, `*` and `?`, in linear time: on a
/// mismatch it retries from the last `*`, letting it swallow one more byte.
fn glob_matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                last_star = Some((p, n));
                p += 1;
            }
            Some(&byte) if byte == b'?' || byte == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match last_star {
                Some((star, matched)) => {
                    p = star + 1;
                    n = matched + 1;
                    last_star = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(allow: &[&str], deny: &[&str]) -> CratePatterns {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        CratePatterns::new(&owned(allow), &owned(deny))
    }

    #[test]
    fn globs() {
        for (pattern, name, expected) in [
            ("serde*", "serde", true),
            ("serde*", "serde_json", true),
            ("serde*", "xserde", false),
            ("*", "anything", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*_derive", "serde_derive", true),
            ("*_derive", "serde_derive_internals", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(
                glob_matches(pattern.as_bytes(), name.as_bytes()),
                expected,
                "{pattern} ~ {name}"
            );
        }
    }

    #[test]
    fn deny_wins_and_empty_allow_admits_all() {
        let open = patterns(&[], &[]);
        assert!(open.permits("anything"));
        let listed = patterns(&["serde*", "Tokio"], &["serde-json"]);
        assert!(listed.permits("serde"));
        assert!(listed.permits("SERDE_derive"));
        assert!(listed.permits("tokio"));
        assert!(!listed.permits("serde_json"), "deny wins, `-` is `_`");
        assert!(!listed.permits("rand"), "not on the allow list");
        let denied = patterns(&[], &["evil*"]);
        assert!(denied.permits("good"));
        assert!(!denied.permits("Evil-Crate"));
    }
}
