//! Crate and user name rules.
//!
//! Crate names follow crates.io: ASCII letters, digits, `-` and `_`, starting with a letter, at
//! most [`MAX_CRATE_NAME_LEN`] characters, and never a name Windows reserves for devices (the
//! index stores one file per crate, and a checkout on Windows could not hold `con` or `nul`).
//! Two names that differ only in case or in `-` versus `_` are the same crate.

use std::fmt;

/// The longest crate name accepted, as on crates.io.
pub const MAX_CRATE_NAME_LEN: usize = 64;

/// The longest user name accepted.
pub const MAX_USER_NAME_LEN: usize = 64;

/// File names Windows reserves for devices, in lower case.
const WINDOWS_RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Why a crate or user name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than allowed.
    #[error("the name `{name}` is longer than {max} characters")]
    TooLong {
        /// The refused name.
        name: String,
        /// The limit.
        max: usize,
    },
    /// The first character is not an ASCII letter.
    #[error("the name `{name}` must start with an ASCII letter")]
    BadStart {
        /// The refused name.
        name: String,
    },
    /// A character outside the allowed set.
    #[error(
        "the name `{name}` contains `{character}`: only ASCII letters, digits, `-` and `_` are allowed"
    )]
    BadCharacter {
        /// The refused name.
        name: String,
        /// The first offending character.
        character: char,
    },
    /// A device name reserved by Windows.
    #[error("the name `{name}` is reserved on Windows and cannot be an index file")]
    Reserved {
        /// The refused name.
        name: String,
    },
}

/// Checks a crate name against the registry's rules.
///
/// # Errors
///
/// Returns the first rule the name breaks.
pub fn validate_crate_name(name: &str) -> Result<(), NameError> {
    let Some(first) = name.chars().next() else {
        return Err(NameError::Empty);
    };
    if name.len() > MAX_CRATE_NAME_LEN {
        return Err(NameError::TooLong {
            name: name.to_owned(),
            max: MAX_CRATE_NAME_LEN,
        });
    }
    if !first.is_ascii_alphabetic() {
        return Err(NameError::BadStart {
            name: name.to_owned(),
        });
    }
    if let Some(character) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(NameError::BadCharacter {
            name: name.to_owned(),
            character,
        });
    }
    let lower = name.to_ascii_lowercase();
    if WINDOWS_RESERVED.contains(&lower.as_str()) {
        return Err(NameError::Reserved {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Checks a user name: ASCII letters, digits, `-`, `_` and `.`, at most [`MAX_USER_NAME_LEN`]
/// characters, starting with a letter or digit.
///
/// # Errors
///
/// Returns the first rule the name breaks.
pub fn validate_user_name(name: &str) -> Result<(), NameError> {
    let Some(first) = name.chars().next() else {
        return Err(NameError::Empty);
    };
    if name.len() > MAX_USER_NAME_LEN {
        return Err(NameError::TooLong {
            name: name.to_owned(),
            max: MAX_USER_NAME_LEN,
        });
    }
    if !first.is_ascii_alphanumeric() {
        return Err(NameError::BadStart {
            name: name.to_owned(),
        });
    }
    if let Some(character) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(NameError::BadCharacter {
            name: name.to_owned(),
            character,
        });
    }
    Ok(())
}

/// Returns the key under which a crate name is unique: lower case, with `-` folded into `_`.
///
/// `Foo-Bar`, `foo_bar` and `FOO-BAR` all give `foo_bar`.
pub fn canonical_crate_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' => '_',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

/// A crate's identity: a valid name as it was given (published, or written in a request path)
/// and the keys derived from it, computed once where the name enters and carried from there
/// through the store, the hand-off to the indexer and its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CrateId {
    name: String,
    canonical: String,
    index_path: String,
}

impl CrateId {
    /// Validates `name` and derives its keys.
    ///
    /// # Errors
    ///
    /// Returns the first rule the name breaks.
    pub fn new(name: &str) -> Result<Self, NameError> {
        validate_crate_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            canonical: canonical_crate_name(name),
            index_path: crate::index::index_path(name),
        })
    }

    /// Returns the name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the key under which the crate is unique (see [`canonical_crate_name`]): what
    /// the stores key a crate by.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// Returns the path of the crate's index file (see [`crate::index::index_path`]).
    pub fn index_path(&self) -> &str {
        &self.index_path
    }
}

impl fmt::Display for CrateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_registry_names() {
        for name in [
            "a", "ab", "abc", "abcd", "Serde", "foo-bar", "foo_bar", "x1",
        ] {
            assert_eq!(validate_crate_name(name), Ok(()), "{name}");
        }
        let longest = "a".repeat(MAX_CRATE_NAME_LEN);
        assert_eq!(validate_crate_name(&longest), Ok(()));
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(validate_crate_name(""), Err(NameError::Empty));
        assert!(matches!(
            validate_crate_name(&"a".repeat(65)),
            Err(NameError::TooLong { max: 64, .. })
        ));
        assert!(matches!(
            validate_crate_name("1abc"),
            Err(NameError::BadStart { .. })
        ));
        assert!(matches!(
            validate_crate_name("_abc"),
            Err(NameError::BadStart { .. })
        ));
        assert!(matches!(
            validate_crate_name("ab.c"),
            Err(NameError::BadCharacter { character: '.', .. })
        ));
        assert!(matches!(
            validate_crate_name("caf\u{e9}"),
            Err(NameError::BadCharacter { .. })
        ));
        for reserved in ["nul", "CON", "Aux", "com1", "LPT9", "prn"] {
            assert!(
                matches!(
                    validate_crate_name(reserved),
                    Err(NameError::Reserved { .. })
                ),
                "{reserved}"
            );
        }
    }

    #[test]
    fn user_names() {
        assert_eq!(validate_user_name("alice.smith-2"), Ok(()));
        assert_eq!(validate_user_name(""), Err(NameError::Empty));
        assert!(validate_user_name("a/b").is_err());
        assert!(validate_user_name("ktra-secure-auth:alice").is_err());
    }

    #[test]
    fn canonical_folds_case_and_dashes() {
        assert_eq!(canonical_crate_name("Foo-Bar_baz"), "foo_bar_baz");
        let id = CrateId::new("Foo-Bar").unwrap();
        assert_eq!(id.canonical(), canonical_crate_name("foo_bar"));
        assert_eq!(id.name(), "Foo-Bar");
        assert_eq!(id.index_path(), "fo/o-/foo-bar");
        assert!(CrateId::new("a/b").is_err());
    }

    proptest! {
        #[test]
        fn canonical_is_idempotent_and_collides_only_on_case_and_dashes(
            name in "[a-zA-Z][a-zA-Z0-9_-]{0,63}"
        ) {
            prop_assert_eq!(validate_crate_name(&name).is_ok(), !WINDOWS_RESERVED.contains(&name.to_ascii_lowercase().as_str()));
            let canonical = canonical_crate_name(&name);
            prop_assert_eq!(canonical_crate_name(&canonical), canonical.clone());
            let respelled: String = name
                .chars()
                .map(|c| if c == '_' { '-' } else { c.to_ascii_uppercase() })
                .collect();
            prop_assert_eq!(canonical_crate_name(&respelled), canonical);
        }
    }
}
