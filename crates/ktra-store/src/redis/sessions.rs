//! Browser sessions and the list of users in Redis. A session is a hash that expires with it,
//! so Redis drops ended ones by itself.

use async_trait::async_trait;
use chrono::Utc;
use redis::AsyncCommands;

use super::{RedisStore, classify, from_millis, internal, millis};
use crate::error::StoreError;
use crate::model::{NewSession, Session, User, UserId, UserSummary};
use crate::traits::SessionStore;

#[async_trait]
impl SessionStore for RedisStore {
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        let id_hex = hex::encode(session.id_hash);
        let key = self.keys.session(&id_hex);
        let index = self.keys.user_sessions(session.user);
        let expires_at = session.expires_at.timestamp_millis();
        let mut connection = self.primary.writer().await;
        let _: () = redis::pipe()
            .atomic()
            .sadd(&index, &id_hex)
            .ignore()
            // The index lives as long as the user's last session: set once, then only moved
            // later.
            .cmd("PEXPIREAT")
            .arg(&index)
            .arg(expires_at)
            .arg("NX")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&index)
            .arg(expires_at)
            .arg("GT")
            .ignore()
            .hset_multiple(
                &key,
                &[
                    ("user", session.user.to_string()),
                    ("csrf", session.csrf),
                    ("expires_at", millis(session.expires_at)),
                ],
            )
            .ignore()
            .pexpire_at(&key, expires_at)
            .ignore()
            .query_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await
    }

    async fn session(&self, id_hash: [u8; 32]) -> Result<Option<Session>, StoreError> {
        let (user, csrf, expires_at): (Option<UserId>, Option<String>, Option<String>) = self
            .connection()
            .hmget(
                self.keys.session(&hex::encode(id_hash)),
                &["user", "csrf", "expires_at"],
            )
            .await
            .map_err(classify)?;
        let (Some(user), Some(csrf), Some(expires_at)) = (user, csrf, expires_at) else {
            return Ok(None);
        };
        let expires_at = from_millis(&expires_at)?;
        if expires_at <= Utc::now() {
            return Ok(None);
        }
        Ok(Some(Session {
            user: self.user_by_id(user).await?,
            csrf,
            expires_at,
        }))
    }

    async fn end_session(&self, id_hash: [u8; 32]) -> Result<(), StoreError> {
        let mut connection = self.primary.writer().await;
        let _: () = connection
            .del(self.keys.session(&hex::encode(id_hash)))
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await
    }

    async fn end_user_sessions(&self, user: UserId) -> Result<(), StoreError> {
        let index = self.keys.user_sessions(user);
        let mut connection = self.primary.writer().await;
        let sessions: Vec<String> = connection.smembers(&index).await.map_err(classify)?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for id_hex in &sessions {
            pipe.del(self.keys.session(id_hex)).ignore();
        }
        pipe.del(&index).ignore();
        let () = pipe.query_async(&mut connection).await.map_err(classify)?;
        self.primary.replicated(&mut connection).await
    }

    async fn list_users(&self) -> Result<Vec<UserSummary>, StoreError> {
        let mut connection = self.connection();
        let last: Option<u32> = connection
            .get(self.keys.next_user_id())
            .await
            .map_err(classify)?;
        let mut listed = Vec::new();
        let ids: Vec<UserId> = (1..=last.unwrap_or(0)).collect();
        for chunk in ids.chunks(512) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.get(self.keys.user_name(*id));
            }
            let names: Vec<Option<String>> =
                pipe.query_async(&mut connection).await.map_err(classify)?;
            let mut pipe = redis::pipe();
            let present: Vec<(UserId, String)> = chunk
                .iter()
                .zip(names)
                .filter_map(|(id, name)| Some((*id, name?)))
                .collect();
            for (_, lower) in &present {
                pipe.hmget(self.keys.user(lower), &["name", "disabled", "created_at"]);
            }
            let fields: Vec<(Option<String>, Option<String>, Option<String>)> =
                pipe.query_async(&mut connection).await.map_err(classify)?;
            for ((id, _), (name, disabled, created_at)) in present.into_iter().zip(fields) {
                let (Some(name), Some(created_at)) = (name, created_at) else {
                    continue;
                };
                listed.push(UserSummary {
                    user: User { id, name },
                    disabled: disabled.as_deref() == Some("1"),
                    created_at: from_millis(&created_at).map_err(|_| internal("bad created_at"))?,
                });
            }
        }
        Ok(listed)
    }
}
