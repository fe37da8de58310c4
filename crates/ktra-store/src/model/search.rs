//! Search: ranking, matching and the word and trigram indexes.

/// One search result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// The crate name.
    pub name: String,
    /// The highest version that is not yanked (`0.0.0` when all are).
    pub max_version: String,
    /// The latest published description.
    pub description: Option<String>,
}

/// A page of search results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// The hits on this page.
    pub hits: Vec<SearchHit>,
    /// How many crates match in all.
    pub total: u64,
}

/// Orders search hits: the exact name first, then names starting with the query, then the rest,
/// each group alphabetically.
pub fn search_rank(query_lower: &str, canonical: &str) -> (u8, String) {
    let query = ktra_core::name::canonical_crate_name(query_lower);
    let group = if canonical == query {
        0
    } else if canonical.starts_with(&query) {
        1
    } else {
        2
    };
    (group, canonical.to_owned())
}

/// The shortest query matched anywhere in a name; shorter queries match name prefixes.
pub const MIN_SUBSTRING_QUERY: usize = 3;

/// Splits text into the lower-case words search matches descriptions by.
pub fn words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words
}

/// Returns the three-character windows of a canonical name, the keys of the name index.
pub fn trigrams(canonical: &str) -> Vec<String> {
    let chars: Vec<char> = canonical.chars().collect();
    let mut grams: Vec<String> = chars
        .windows(3)
        .map(|window| window.iter().collect())
        .collect();
    grams.sort();
    grams.dedup();
    grams
}

/// Returns whether `text`, folded like crate names, occurs in a canonical name (for texts
/// shorter than [`MIN_SUBSTRING_QUERY`], starts it).
pub fn name_contains(canonical: &str, text: &str) -> bool {
    let folded = ktra_core::name::canonical_crate_name(text);
    if folded.chars().count() < MIN_SUBSTRING_QUERY {
        canonical.starts_with(&folded)
    } else {
        canonical.contains(&folded)
    }
}

/// Returns whether a crate matches a search query: the whole query occurs in the name (see
/// [`name_contains`]), or each word of the query occurs in the name or is a word of the
/// description (`serde json` finds `serde_json`, and a crate described as a fast JSON parser).
pub fn search_matches(query: &str, canonical: &str, description: Option<&str>) -> bool {
    if name_contains(canonical, query) {
        return true;
    }
    let wanted = words(query);
    let have = description.map(words).unwrap_or_default();
    !wanted.is_empty()
        && wanted
            .iter()
            .all(|word| name_contains(canonical, word) || have.binary_search(word).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_matches_names_and_description_words() {
        assert!(search_matches("Serde", "serde_json", None));
        assert!(search_matches("json", "serde_json", None));
        assert!(!search_matches("js", "serde_json", None));
        assert!(search_matches("se", "serde_json", None));
        assert!(search_matches(
            "fast JSON",
            "simd",
            Some("A fast json parser.")
        ));
        assert!(!search_matches(
            "fast xml",
            "simd",
            Some("A fast json parser.")
        ));
        assert!(search_matches("serde json", "serde_json", None));
        assert!(search_matches("json serde", "serde_json", None));
        assert!(search_matches(
            "simd json",
            "simd",
            Some("A fast json parser.")
        ));
        assert!(!search_matches("serde xml", "serde_json", None));
        assert_eq!(trigrams("serde"), ["erd", "rde", "ser"]);
        assert_eq!(words("Fast, FAST json!"), ["fast", "json"]);
    }
}
