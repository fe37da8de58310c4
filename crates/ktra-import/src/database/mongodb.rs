//! Ktra's MongoDB database (`db_config.mongodb_url`): one collection per sled key, holding
//! `{id, login, name}` users, `{id, password}` and `{id, token}` documents, and `{name, entry}`
//! crates (Ktra's `mongo_db_manager.rs`; `docs/ktra-data-layout.md`, section 3).

use mongodb::bson::{Document, deserialize_from_document, doc};
use mongodb::sync::{Client, Database};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::records::{DatabaseError, KtraDatabase, KtraEntry, KtraUser};

/// `__PASSWORDS__`: one document per user.
#[derive(Deserialize)]
struct PasswordDocument {
    id: u32,
    password: String,
}

/// `__TOKENS__`: one document per user.
#[derive(Deserialize)]
struct TokenDocument {
    id: u32,
    token: String,
}

/// The database Ktra used: the URL's path, or `ktra` without one.
fn database_name(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or_default();
    let after_scheme = without_query
        .split_once("://")
        .map_or(without_query, |(_, rest)| rest);
    after_scheme
        .split_once('/')
        .map(|(_, path)| path.trim_matches('/'))
        .filter(|path| !path.is_empty())
        .unwrap_or("ktra")
        .to_owned()
}

pub(super) fn read(url: &str) -> Result<KtraDatabase, DatabaseError> {
    let unavailable = |error: mongodb::error::Error| {
        DatabaseError::Unavailable(format!(
            "cannot read Ktra's MongoDB at {} (db_config.mongodb_url): {error}",
            crate::config::redacted(url)
        ))
    };
    let client = Client::with_uri_str(url).map_err(unavailable)?;
    let database = client.database(&database_name(url));
    let users = documents(&database, "__USERS__")
        .map_err(unavailable)?
        .into_iter()
        .map(|user| typed(user, "__USERS__"))
        .collect::<Result<Vec<KtraUser>, _>>()?;
    let mut passwords = std::collections::BTreeMap::new();
    for document in documents(&database, "__PASSWORDS__").map_err(unavailable)? {
        let PasswordDocument { id, password } = typed(document, "__PASSWORDS__")?;
        passwords.insert(id, password);
    }
    let mut tokens = std::collections::BTreeMap::new();
    for document in documents(&database, "__TOKENS__").map_err(unavailable)? {
        let TokenDocument { id, token } = typed(document, "__TOKENS__")?;
        tokens.insert(id, token);
    }
    let mut entries = std::collections::BTreeMap::new();
    for document in documents(&database, "__ENTRIES__").map_err(unavailable)? {
        // A crate that does not read is reported by the plan; the others are imported.
        let name = document.get_str("name").map_or_else(
            |_| format!("(a document without a name: {:?})", document.get("_id")),
            str::to_owned,
        );
        let entry = match document.get_document("entry") {
            Ok(entry) => deserialize_from_document::<KtraEntry>(entry.clone())
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        entries.insert(name, entry);
    }
    Ok(KtraDatabase {
        users,
        passwords,
        tokens,
        entries,
    })
}

/// Every document of a collection.
fn documents(database: &Database, collection: &str) -> mongodb::error::Result<Vec<Document>> {
    database
        .collection::<Document>(collection)
        .find(doc! {})
        .run()?
        .collect()
}

fn typed<T: DeserializeOwned>(document: Document, collection: &str) -> Result<T, DatabaseError> {
    deserialize_from_document(document).map_err(|error| {
        DatabaseError::Unavailable(format!(
            "Ktra's `{collection}` collection holds a document it did not write: {error}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_the_urls_path_or_ktra_as_ktra_chose_it() {
        assert_eq!(database_name("mongodb://localhost:27017"), "ktra");
        assert_eq!(database_name("mongodb://localhost:27017/"), "ktra");
        assert_eq!(
            database_name("mongodb://u:p@h1,h2/mydb?replicaSet=rs"),
            "mydb"
        );
        assert_eq!(
            database_name("mongodb+srv://cluster.example/registry"),
            "registry"
        );
    }
}
