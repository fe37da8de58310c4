//! Browser sessions and the list of users in the embedded store.

use async_trait::async_trait;
use chrono::Utc;
use redb::ReadableTable;

use super::EmbeddedStore;
use super::accounts::user_by_id;
use super::schema::{
    SESSIONS, SessionRecord, USER_IDS, USERS, UserRecord, decode, encode, internal,
};
use crate::error::StoreError;
use crate::model::{NewSession, Session, User, UserId, UserSummary};
use crate::traits::SessionStore;

#[async_trait]
impl SessionStore for EmbeddedStore {
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        self.write(move |txn| {
            let mut sessions = txn.open_table(SESSIONS).map_err(internal)?;
            // Expired sessions go as new ones come, so the table holds about the live ones.
            let now = Utc::now();
            sessions
                .retain(|_, value| {
                    decode::<SessionRecord>(value).is_ok_and(|record| record.expires_at > now)
                })
                .map_err(internal)?;
            let record = SessionRecord {
                user: session.user,
                csrf: session.csrf,
                expires_at: session.expires_at,
            };
            sessions
                .insert(session.id_hash.as_slice(), encode(&record)?.as_slice())
                .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn session(&self, id_hash: [u8; 32]) -> Result<Option<Session>, StoreError> {
        self.read(move |txn| {
            let sessions = txn.open_table(SESSIONS).map_err(internal)?;
            let Some(record) = sessions
                .get(id_hash.as_slice())
                .map_err(internal)?
                .map(|value| decode::<SessionRecord>(value.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            if record.expires_at <= Utc::now() {
                return Ok(None);
            }
            let user_ids = txn.open_table(USER_IDS).map_err(internal)?;
            let users = txn.open_table(USERS).map_err(internal)?;
            Ok(Some(Session {
                user: user_by_id(&user_ids, &users, record.user)?,
                csrf: record.csrf,
                expires_at: record.expires_at,
            }))
        })
        .await
    }

    async fn end_session(&self, id_hash: [u8; 32]) -> Result<(), StoreError> {
        self.write(move |txn| {
            txn.open_table(SESSIONS)
                .map_err(internal)?
                .remove(id_hash.as_slice())
                .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn end_user_sessions(&self, user: UserId) -> Result<(), StoreError> {
        self.write(move |txn| {
            txn.open_table(SESSIONS)
                .map_err(internal)?
                .retain(|_, value| {
                    decode::<SessionRecord>(value).is_ok_and(|record| record.user != user)
                })
                .map_err(internal)
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<UserSummary>, StoreError> {
        self.scan(|txn| {
            let users = txn.open_table(USERS).map_err(internal)?;
            let mut listed = Vec::new();
            for entry in users.iter().map_err(internal)? {
                let record: UserRecord = decode(entry.map_err(internal)?.1.value())?;
                listed.push(UserSummary {
                    user: User {
                        id: record.id,
                        name: record.name,
                    },
                    disabled: record.disabled,
                    created_at: record.created_at,
                });
            }
            listed.sort_by_key(|summary| summary.user.id);
            Ok(listed)
        })
        .await
    }
}
