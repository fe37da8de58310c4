//! Users, tokens and invitations in Redis.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::RedisStore;
use super::scripts::AuditArgs;
use super::{classify, from_millis, internal, millis};
use crate::error::StoreError;
use crate::model::{
    AuditEvent, DEFAULT_TOKEN_NAME, EXPIRED_TOKEN_KEPT, Invitation, NewToken, NewUser,
    PasswordChange, StoredToken, TokenDetails, TokenId, TokenInfo, User, UserCredentials, UserId,
};
use crate::traits::AccountStore;

/// The token fields scripts store beside the user and secret: name, expiry (ms or empty) and
/// scope (JSON), in that order, then when Redis drops the record (ms or empty).
pub(super) fn token_fields(details: &TokenDetails) -> Result<[String; 4], StoreError> {
    Ok([
        details.name.clone(),
        details.expires_at.map(millis).unwrap_or_default(),
        serde_json::to_string(&details.scope).map_err(internal)?,
        details
            .expires_at
            .map(|at| millis(at + EXPIRED_TOKEN_KEPT))
            .unwrap_or_default(),
    ])
}

/// Reads a token hash's fields back.
pub(super) fn token_details(fields: &HashMap<String, String>) -> Result<TokenDetails, StoreError> {
    let created_at = fields
        .get("created_at")
        .ok_or_else(|| internal("token record lacks created_at"))?;
    Ok(TokenDetails {
        name: fields
            .get("name")
            .filter(|name| !name.is_empty())
            .cloned()
            .unwrap_or_else(|| DEFAULT_TOKEN_NAME.to_owned()),
        created_at: from_millis(created_at)?,
        expires_at: match fields.get("expires_at").map(String::as_str) {
            None | Some("") => None,
            Some(text) => Some(from_millis(text)?),
        },
        scope: match fields.get("scope") {
            Some(json) => serde_json::from_str(json).map_err(internal)?,
            None => Default::default(),
        },
    })
}

/// A record kept as a Redis hash (a user, a token), read whole.
pub(super) struct Record {
    kind: &'static str,
    fields: HashMap<String, String>,
}

impl Record {
    /// A field the record must have.
    pub(super) fn field(&self, key: &str) -> Result<String, StoreError> {
        self.fields
            .get(key)
            .cloned()
            .ok_or_else(|| internal(format!("{} record lacks {key}", self.kind)))
    }

    /// A field the record may lack.
    pub(super) fn get(&self, key: &str) -> Option<&String> {
        self.fields.get(key)
    }

    /// Every field.
    pub(super) fn all(&self) -> &HashMap<String, String> {
        &self.fields
    }
}

impl RedisStore {
    /// Reads the hash under `key`, a record of `kind`; `None` when there is none.
    pub(super) async fn record(
        &self,
        key: String,
        kind: &'static str,
    ) -> Result<Option<Record>, StoreError> {
        let fields: HashMap<String, String> =
            self.connection().hgetall(key).await.map_err(classify)?;
        Ok((!fields.is_empty()).then_some(Record { kind, fields }))
    }

    /// The user with id `id`, who must exist (an owner, a token's holder).
    pub(super) async fn user_by_id(&self, id: UserId) -> Result<User, StoreError> {
        self.find_user_by_id(id)
            .await?
            .ok_or_else(|| internal(format!("user id {id} has no name")))
    }

    /// The user with id `id`, or `None` when there is none.
    pub(super) async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let mut connection = self.connection();
        let lower: Option<String> = connection
            .get(self.keys.user_name(id))
            .await
            .map_err(classify)?;
        let Some(lower) = lower else {
            return Ok(None);
        };
        let name: Option<String> = connection
            .hget(self.keys.user(&lower), "name")
            .await
            .map_err(classify)?;
        Ok(Some(User {
            id,
            name: name.ok_or_else(|| internal(format!("user `{lower}` has no record")))?,
        }))
    }

    /// The user with id `id`, or [`StoreError::UserNotFound`] as the embedded store answers.
    async fn known_user(&self, id: UserId) -> Result<User, StoreError> {
        self.find_user_by_id(id)
            .await?
            .ok_or_else(|| StoreError::UserNotFound(format!("#{id}")))
    }

    pub(super) async fn users_by_name(&self, names: &[String]) -> Result<Vec<User>, StoreError> {
        let mut users = Vec::with_capacity(names.len());
        for name in names {
            let credentials = self
                .user_credentials(name)
                .await?
                .ok_or_else(|| StoreError::UserNotFound(name.clone()))?;
            users.push(credentials.user);
        }
        Ok(users)
    }
}

#[async_trait]
impl AccountStore for RedisStore {
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let NewUser {
            name,
            password_hash,
            token,
            invitation,
            audit,
        } = new;
        let mut connection = self.primary.writer().await;
        let lower = name.to_lowercase();
        if let Some(code_hash) = invitation {
            let known: bool = connection
                .exists(self.keys.invitation(&hex::encode(code_hash)))
                .await
                .map_err(classify)?;
            if !known {
                return Err(StoreError::InvitationInvalid);
            }
        }
        if connection
            .exists::<_, bool>(self.keys.user(&lower))
            .await
            .map_err(classify)?
        {
            return Err(StoreError::UserExists(name));
        }
        // Ids are never reused; a lost race below only leaves a gap.
        let id: u64 = connection
            .incr(self.keys.next_user_id(), 1)
            .await
            .map_err(classify)?;
        let id = UserId::try_from(id).map_err(|_| internal("user ids exhausted"))?;
        let mut invocation = self.scripts.create_user.prepare_invoke();
        invocation
            .key(self.keys.user(&lower))
            .key(self.keys.user_name(id))
            .key(self.keys.token(&token.id.to_hex()))
            .key(self.keys.user_tokens(id));
        if let Some(code_hash) = invitation {
            invocation.key(self.keys.invitation(&hex::encode(code_hash)));
        }
        invocation
            .arg(id)
            .arg(&name)
            .arg(password_hash)
            .arg(millis(token.details.created_at))
            .arg(token.id.to_hex())
            .arg(hex::encode(token.secret_hash))
            .arg(&token_fields(&token.details)?[..])
            .audit(self.keys.audit(), &audit)?;
        let created: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        match created {
            1 => Ok(User { id, name }),
            -1 => Err(StoreError::InvitationInvalid),
            _ => Err(StoreError::UserExists(name)),
        }
    }

    async fn create_invitation(
        &self,
        invitation: Invitation,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let expires_at = u64::try_from(invitation.expires_at.timestamp_millis())
            .map_err(|_| internal("invitation expiry before 1970"))?;
        let code = hex::encode(invitation.code_hash);
        let issued = self.keys.user_invitations(invitation.created_by);
        let mut connection = self.primary.writer().await;
        let _: () = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.keys.invitation(&code))
            .arg(invitation.created_by)
            .arg("PXAT")
            .arg(expires_at)
            .ignore()
            .sadd(&issued, &code)
            .ignore()
            // The set of an active administrator's codes lives as long as the newest of them.
            .cmd("PEXPIREAT")
            .arg(&issued)
            .arg(expires_at)
            .arg("GT")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&issued)
            .arg(expires_at)
            .arg("NX")
            .ignore()
            .add_command(self.append_audit(&audit)?)
            .ignore()
            .query_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await
    }

    async fn user_credentials(&self, name: &str) -> Result<Option<UserCredentials>, StoreError> {
        let Some(fields) = self
            .record(self.keys.user(&name.to_lowercase()), "user")
            .await?
        else {
            return Ok(None);
        };
        let field = |key: &str| fields.field(key);
        Ok(Some(UserCredentials {
            user: User {
                id: field("id")?.parse().map_err(internal)?,
                name: field("name")?,
            },
            password_hash: field("password_hash")?,
            disabled: fields.get("disabled").is_some_and(|value| value == "1"),
        }))
    }

    async fn add_token(
        &self,
        user: UserId,
        token: NewToken,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let owner = self.known_user(user).await?;
        let mut connection = self.primary.writer().await;
        let status: String = self
            .scripts
            .add_token
            .key(self.keys.user(&owner.name.to_lowercase()))
            .key(self.keys.user_tokens(user))
            .key(self.keys.token(&token.id.to_hex()))
            .arg(token.id.to_hex())
            .arg(hex::encode(token.secret_hash))
            .arg(millis(token.details.created_at))
            .arg(&token_fields(&token.details)?[..])
            .audit(self.keys.audit(), &audit)?
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        match status.as_str() {
            "ok" => Ok(()),
            "disabled" => Err(StoreError::UserDisabled(owner.name)),
            "no_user" => Err(StoreError::UserNotFound(owner.name)),
            other => Err(internal(format!("add_token script answered {other}"))),
        }
    }

    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenInfo>, StoreError> {
        let mut connection = self.connection();
        let ids: Vec<String> = connection
            .smembers(self.keys.user_tokens(user))
            .await
            .map_err(classify)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.keys.token(id));
        }
        let records: Vec<HashMap<String, String>> =
            pipe.query_async(&mut connection).await.map_err(classify)?;
        let mut listed = Vec::with_capacity(ids.len());
        for (id, fields) in ids.iter().zip(records) {
            if fields.is_empty() {
                continue;
            }
            let mut raw = [0_u8; 8];
            hex::decode_to_slice(id, &mut raw).map_err(internal)?;
            listed.push(TokenInfo {
                id: TokenId(raw),
                details: token_details(&fields)?,
            });
        }
        listed.sort_by_key(|token| (token.details.created_at, token.id));
        Ok(listed)
    }

    async fn revoke_token(
        &self,
        user: UserId,
        id: TokenId,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut connection = self.primary.writer().await;
        let revoked: i64 = self
            .scripts
            .revoke_token
            .key(self.keys.user_tokens(user))
            .key(self.keys.token(&id.to_hex()))
            .arg(id.to_hex())
            .audit(self.keys.audit(), &audit)?
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        if revoked == 1 {
            Ok(())
        } else {
            Err(StoreError::TokenNotFound(id.to_hex()))
        }
    }

    async fn set_user_disabled(
        &self,
        name: &str,
        disabled: bool,
        audit: AuditEvent,
    ) -> Result<User, StoreError> {
        let mut connection = self.primary.writer().await;
        let reply: Vec<String> = self
            .scripts
            .disable_user
            .key(self.keys.user(&name.to_lowercase()))
            .arg(if disabled { "1" } else { "0" })
            .arg(self.keys.user_tokens_prefix())
            .arg(self.keys.token_prefix())
            .arg(self.keys.user_invitations_prefix())
            .arg(self.keys.invitation_prefix())
            .audit(self.keys.audit(), &audit)?
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        match reply.as_slice() {
            [status, id, name] if status == "ok" => Ok(User {
                id: id.parse().map_err(internal)?,
                name: name.clone(),
            }),
            [status] if status == "no_user" => Err(StoreError::UserNotFound(name.to_owned())),
            _ => Err(internal("disable_user script answered an unexpected shape")),
        }
    }

    async fn change_password(&self, change: PasswordChange) -> Result<(), StoreError> {
        let (user, token) = (change.user, &change.token);
        let owner = self.known_user(user).await?;
        let mut connection = self.primary.writer().await;
        let changed: i64 = self
            .scripts
            .change_password
            .key(self.keys.user(&owner.name.to_lowercase()))
            .key(self.keys.user_tokens(user))
            .key(self.keys.token(&token.id.to_hex()))
            .arg(&change.old_password_hash)
            .arg(&change.new_password_hash)
            .arg(self.keys.token_prefix())
            .arg(token.id.to_hex())
            .arg(hex::encode(token.secret_hash))
            .arg(millis(token.details.created_at))
            .arg(&token_fields(&token.details)?[..])
            .audit(self.keys.audit(), &change.audit)?
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        match changed {
            1 => Ok(()),
            -1 => Err(StoreError::UserDisabled(owner.name)),
            _ => Err(StoreError::PasswordChanged),
        }
    }

    async fn rehash_password(
        &self,
        user: UserId,
        old_password_hash: &str,
        new_password_hash: &str,
    ) -> Result<bool, StoreError> {
        let lower: Option<String> = self
            .connection()
            .get(self.keys.user_name(user))
            .await
            .map_err(classify)?;
        let Some(lower) = lower else {
            return Ok(false);
        };
        let mut connection = self.primary.writer().await;
        let replaced: i64 = self
            .scripts
            .rehash_password
            .key(self.keys.user(&lower))
            .arg(old_password_hash)
            .arg(new_password_hash)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        Ok(replaced == 1)
    }

    async fn token(&self, id: TokenId) -> Result<Option<StoredToken>, StoreError> {
        let Some(fields) = self.record(self.keys.token(&id.to_hex()), "token").await? else {
            return Ok(None);
        };
        let field = |key: &str| fields.field(key);
        let mut secret_hash = [0_u8; 32];
        hex::decode_to_slice(field("secret_hash")?, &mut secret_hash).map_err(internal)?;
        Ok(Some(StoredToken {
            id,
            user: User {
                id: field("user")?.parse().map_err(internal)?,
                name: field("user_name")?,
            },
            secret_hash,
            details: token_details(fields.all())?,
        }))
    }
}
