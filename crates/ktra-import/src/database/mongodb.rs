//! Ktra's MongoDB database (`db_config.mongodb_url`): one collection per sled key, holding
//! `{id, login, name}` users, `{id, password}` and `{id, token}` documents, and `{name, entry}`
//! crates (Ktra's `mongo_db_manager.rs`; `docs/ktra-data-layout.md`, section 3).

use mongodb::bson::{Bson, Document, doc};
use mongodb::sync::{Client, Database};
use serde_json::{Map, Value};

use crate::records::{DatabaseError, KtraDatabase, PASSWORDS_KEY, TOKENS_KEY, USERS_KEY};

/// The crates' collection.
const ENTRIES: &str = "__ENTRIES__";

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
            "cannot read Ktra's MongoDB at {url} (db_config.mongodb_url): {error}"
        ))
    };
    let client = Client::with_uri_str(url).map_err(unavailable)?;
    let database = client.database(&database_name(url));
    let all = |collection: &str| -> Result<Vec<Value>, DatabaseError> {
        documents(&database, collection).map_err(unavailable)
    };
    let users: Vec<Value> = all(USERS_KEY)?
        .into_iter()
        .map(|mut user| {
            if let Some(user) = user.as_object_mut() {
                user.remove("_id");
            }
            user
        })
        .collect();
    let by_id = |documents: Vec<Value>, field: &str| -> Value {
        let map: Map<String, Value> = documents
            .into_iter()
            .filter_map(|document| {
                let id = document.get("id")?.as_u64()?;
                Some((id.to_string(), document.get(field)?.clone()))
            })
            .collect();
        Value::Object(map)
    };
    let mut records = vec![
        (
            USERS_KEY.as_bytes().to_vec(),
            Value::Array(users).to_string().into_bytes(),
        ),
        (
            PASSWORDS_KEY.as_bytes().to_vec(),
            by_id(all(PASSWORDS_KEY)?, "password")
                .to_string()
                .into_bytes(),
        ),
        (
            TOKENS_KEY.as_bytes().to_vec(),
            by_id(all(TOKENS_KEY)?, "token").to_string().into_bytes(),
        ),
    ];
    for crate_document in all(ENTRIES)? {
        let (Some(Value::String(name)), Some(entry)) =
            (crate_document.get("name"), crate_document.get("entry"))
        else {
            continue;
        };
        records.push((name.as_bytes().to_vec(), entry.to_string().into_bytes()));
    }
    KtraDatabase::from_records(records)
}

/// Every document of a collection, as relaxed extended JSON (numbers as numbers).
fn documents(database: &Database, collection: &str) -> mongodb::error::Result<Vec<Value>> {
    database
        .collection::<Document>(collection)
        .find(doc! {})
        .run()?
        .map(|document| document.map(|document| Bson::Document(document).into_relaxed_extjson()))
        .collect()
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
