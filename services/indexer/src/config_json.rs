//! The index's `config.json`, which is the operator's file too.
//!
//! The indexer owns three keys, `dl`, `api` and `auth-required`, and derives them from the
//! same settings as the API. A committed file that already says the same, however it is
//! formatted, is left alone (no commit per start), and keys it holds beside ours are kept.

use bytes::Bytes;
use ktra_core::index::IndexConfig;
use serde_json::{Map, Value};

/// Returns the content `config.json` should get, or `None` when `committed` already says
/// what `wanted` says.
pub fn update(committed: Option<&[u8]>, wanted: &IndexConfig) -> Option<Bytes> {
    let whole = || Some(Bytes::from(wanted.to_json()));
    let Ok(Value::Object(ours)) = serde_json::to_value(wanted) else {
        // An IndexConfig is a struct of strings and a bool: always an object.
        return whole();
    };
    let Some(Ok(Value::Object(before))) = committed.map(serde_json::from_slice::<Value>) else {
        // Missing, or not a JSON object: nothing worth keeping.
        return whole();
    };
    let mut after = before.clone();
    after.remove(AUTH_REQUIRED);
    after.extend(ours);
    if without_false_auth(before) == after {
        return None;
    }
    let mut content =
        serde_json::to_string_pretty(&Value::Object(after)).unwrap_or_else(|_| wanted.to_json());
    content.push('\n');
    Some(Bytes::from(content))
}

/// The key written only when true: a false one means the same as none.
const AUTH_REQUIRED: &str = "auth-required";

fn without_false_auth(mut map: Map<String, Value>) -> Map<String, Value> {
    if map.get(AUTH_REQUIRED) == Some(&Value::Bool(false)) {
        map.remove(AUTH_REQUIRED);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(auth_required: bool) -> IndexConfig {
        IndexConfig {
            dl: "http://registry.example:9000/dl".to_owned(),
            api: "http://registry.example:9000".to_owned(),
            auth_required,
        }
    }

    #[test]
    fn the_same_meaning_in_another_format_is_left_alone() {
        let committed =
            br#"{"api":"http://registry.example:9000","dl":"http://registry.example:9000/dl"}"#;
        assert!(update(Some(committed), &wanted(false)).is_none());
        let with_false = br#"{ "dl": "http://registry.example:9000/dl", "api": "http://registry.example:9000", "auth-required": false }"#;
        assert!(update(Some(with_false), &wanted(false)).is_none());
        assert!(update(Some(&wanted(true).to_json().into_bytes()), &wanted(true)).is_none());
    }

    #[test]
    fn changed_keys_are_rewritten_and_foreign_keys_kept() {
        let committed =
            br#"{"dl":"http://127.0.0.1:8000/dl","api":"http://127.0.0.1:8000","comment":"ours"}"#;
        let content = update(Some(committed), &wanted(true)).expect("the URLs changed");
        let written: Value = serde_json::from_slice(&content).unwrap();
        assert_eq!(
            written,
            serde_json::json!({
                "dl": "http://registry.example:9000/dl",
                "api": "http://registry.example:9000",
                "auth-required": true,
                "comment": "ours",
            })
        );
        assert!(content.ends_with(b"\n"));
        // Turning authentication off drops the key.
        let content = update(Some(&content), &wanted(false)).expect("auth changed");
        let written: Value = serde_json::from_slice(&content).unwrap();
        assert!(written.get("auth-required").is_none(), "{written}");
    }

    #[test]
    fn a_missing_or_broken_file_is_written_whole() {
        assert_eq!(
            update(None, &wanted(false)).unwrap(),
            Bytes::from(wanted(false).to_json())
        );
        assert_eq!(
            update(Some(b"not json"), &wanted(false)).unwrap(),
            Bytes::from(wanted(false).to_json())
        );
    }
}
