//! Users, tokens and invitations in the embedded store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadableMultimapTable, ReadableTable, WriteTransaction};

use super::EmbeddedStore;
use super::audit::append_audit;
use super::schema::{
    INVITATIONS, InvitationRecord, META, TOKENS, TokenRecord, USER_IDS, USER_TOKENS, USERS,
    UserRecord, decode, encode, internal,
};
use crate::error::StoreError;
use crate::model::{
    AuditEvent, EXPIRED_TOKEN_KEPT, Invitation, NewToken, NewUser, PasswordChange, StoredToken,
    TokenId, TokenInfo, User, UserCredentials, UserId,
};
use crate::traits::AccountStore;

pub(super) fn user_record(
    users: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<UserRecord>, StoreError> {
    users
        .get(name.to_lowercase().as_str())
        .map_err(internal)?
        .map(|value| decode(value.value()))
        .transpose()
}

pub(super) fn user_by_id(
    user_ids: &impl ReadableTable<u32, &'static str>,
    users: &impl ReadableTable<&'static str, &'static [u8]>,
    id: UserId,
) -> Result<User, StoreError> {
    let name = user_ids
        .get(id)
        .map_err(internal)?
        .map(|value| value.value().to_owned())
        .ok_or_else(|| StoreError::Internal(format!("user id {id} has no name")))?;
    let record = user_record(users, &name)?
        .ok_or_else(|| StoreError::Internal(format!("user `{name}` has no record")))?;
    Ok(User {
        id: record.id,
        name: record.name,
    })
}

/// Creates a user record and its first token; fails if the name is taken.
pub(super) fn insert_user(
    txn: &WriteTransaction,
    name: &str,
    password_hash: String,
    token: &NewToken,
) -> Result<User, StoreError> {
    let mut users = txn.open_table(USERS).map_err(internal)?;
    if user_record(&users, name)?.is_some() {
        return Err(StoreError::UserExists(name.to_owned()));
    }
    let mut meta = txn.open_table(META).map_err(internal)?;
    let id: UserId = match meta.get("next_user_id").map_err(internal)? {
        Some(value) => value.value().parse().map_err(internal)?,
        None => 1,
    };
    let next = id
        .checked_add(1)
        .ok_or_else(|| StoreError::Internal("user ids exhausted".to_owned()))?;
    meta.insert("next_user_id", next.to_string().as_str())
        .map_err(internal)?;
    let record = UserRecord {
        id,
        name: name.to_owned(),
        password_hash,
        created_at: token.details.created_at,
        disabled: false,
    };
    let key = name.to_lowercase();
    users
        .insert(key.as_str(), encode(&record)?.as_slice())
        .map_err(internal)?;
    txn.open_table(USER_IDS)
        .map_err(internal)?
        .insert(id, key.as_str())
        .map_err(internal)?;
    drop(users);
    drop(meta);
    insert_token(txn, id, token)?;
    Ok(User {
        id,
        name: name.to_owned(),
    })
}

/// Removes a user's tokens that expired more than [`EXPIRED_TOKEN_KEPT`] before `now`.
pub(super) fn drop_long_expired_tokens(
    txn: &WriteTransaction,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut user_tokens = txn.open_multimap_table(USER_TOKENS).map_err(internal)?;
    let mut tokens = txn.open_table(TOKENS).map_err(internal)?;
    let mut stale = Vec::new();
    for id in ReadableMultimapTable::get(&user_tokens, user).map_err(internal)? {
        let id = id.map_err(internal)?.value().to_vec();
        let Some(record) = tokens.get(id.as_slice()).map_err(internal)? else {
            continue;
        };
        let record: TokenRecord = decode(record.value())?;
        if record
            .expires_at
            .is_some_and(|at| at + EXPIRED_TOKEN_KEPT <= now)
        {
            stale.push(id);
        }
    }
    for id in stale {
        tokens.remove(id.as_slice()).map_err(internal)?;
        user_tokens.remove(user, id.as_slice()).map_err(internal)?;
    }
    Ok(())
}

/// Removes the invitations `unwanted` picks.
pub(super) fn drop_invitations_where(
    txn: &WriteTransaction,
    unwanted: impl Fn(&InvitationRecord) -> bool,
) -> Result<(), StoreError> {
    let mut invitations = txn.open_table(INVITATIONS).map_err(internal)?;
    let mut picked = Vec::new();
    for entry in invitations.iter().map_err(internal)? {
        let (key, value) = entry.map_err(internal)?;
        if unwanted(&decode(value.value())?) {
            picked.push(key.value().to_vec());
        }
    }
    for key in picked {
        invitations.remove(key.as_slice()).map_err(internal)?;
    }
    Ok(())
}

/// Removes every token of a user.
pub(super) fn revoke_all_tokens(txn: &WriteTransaction, user: UserId) -> Result<(), StoreError> {
    let mut user_tokens = txn.open_multimap_table(USER_TOKENS).map_err(internal)?;
    let mut tokens = txn.open_table(TOKENS).map_err(internal)?;
    for id in user_tokens.remove_all(user).map_err(internal)? {
        let id = id.map_err(internal)?;
        tokens.remove(id.value()).map_err(internal)?;
    }
    Ok(())
}

pub(super) fn insert_token(
    txn: &WriteTransaction,
    user: UserId,
    token: &NewToken,
) -> Result<(), StoreError> {
    let record = TokenRecord {
        user,
        secret_hash: token.secret_hash,
        created_at: token.details.created_at,
        name: token.details.name.clone(),
        expires_at: token.details.expires_at,
        scope: token.details.scope.clone(),
    };
    txn.open_table(TOKENS)
        .map_err(internal)?
        .insert(token.id.0.as_slice(), encode(&record)?.as_slice())
        .map_err(internal)?;
    txn.open_multimap_table(USER_TOKENS)
        .map_err(internal)?
        .insert(user, token.id.0.as_slice())
        .map_err(internal)?;
    Ok(())
}

/// Resolves user names to users, failing on the first unknown one.
pub(super) fn resolve_users(
    txn: &WriteTransaction,
    names: &[String],
) -> Result<Vec<User>, StoreError> {
    let users = txn.open_table(USERS).map_err(internal)?;
    names
        .iter()
        .map(|name| {
            user_record(&users, name)?
                .map(|record| User {
                    id: record.id,
                    name: record.name,
                })
                .ok_or_else(|| StoreError::UserNotFound(name.clone()))
        })
        .collect()
}

/// Returns the lower-case name (the `USERS` key) of user `id`, or `None` when there is none.
fn user_key(txn: &WriteTransaction, id: UserId) -> Result<Option<String>, StoreError> {
    Ok(txn
        .open_table(USER_IDS)
        .map_err(internal)?
        .get(id)
        .map_err(internal)?
        .map(|value| value.value().to_owned()))
}

#[async_trait]
impl AccountStore for EmbeddedStore {
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        self.write(move |txn| {
            if let Some(invitation) = new.invitation {
                let mut invitations = txn.open_table(INVITATIONS).map_err(internal)?;
                let record: InvitationRecord = invitations
                    .remove(invitation.as_slice())
                    .map_err(internal)?
                    .map(|value| decode(value.value()))
                    .transpose()?
                    .ok_or(StoreError::InvitationInvalid)?;
                if record.expires_at <= new.token.details.created_at {
                    // Dropping the transaction keeps nothing, so the expired record stays; the
                    // answer is the same as for an unknown code.
                    return Err(StoreError::InvitationInvalid);
                }
            }
            let user = insert_user(txn, &new.name, new.password_hash, &new.token)?;
            append_audit(txn, &new.audit)?;
            Ok(user)
        })
        .await
    }

    async fn create_invitation(
        &self,
        invitation: Invitation,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.write(move |txn| {
            // Expired invitations go as new ones arrive.
            let now = Utc::now();
            drop_invitations_where(txn, |record| record.expires_at <= now)?;
            let record = InvitationRecord {
                created_by: invitation.created_by,
                expires_at: invitation.expires_at,
            };
            txn.open_table(INVITATIONS)
                .map_err(internal)?
                .insert(invitation.code_hash.as_slice(), encode(&record)?.as_slice())
                .map_err(internal)?;
            append_audit(txn, &audit)
        })
        .await
    }

    async fn user_credentials(&self, name: &str) -> Result<Option<UserCredentials>, StoreError> {
        let name = name.to_owned();
        self.read(move |txn| {
            let users = txn.open_table(USERS).map_err(internal)?;
            Ok(user_record(&users, &name)?.map(|record| UserCredentials {
                user: User {
                    id: record.id,
                    name: record.name,
                },
                password_hash: record.password_hash,
                disabled: record.disabled,
            }))
        })
        .await
    }

    async fn add_token(
        &self,
        user: UserId,
        token: NewToken,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.write(move |txn| {
            let key =
                user_key(txn, user)?.ok_or_else(|| StoreError::UserNotFound(format!("#{user}")))?;
            let users = txn.open_table(USERS).map_err(internal)?;
            let record =
                user_record(&users, &key)?.ok_or_else(|| StoreError::UserNotFound(key.clone()))?;
            if record.disabled {
                return Err(StoreError::UserDisabled(record.name));
            }
            drop(users);
            drop_long_expired_tokens(txn, user, token.details.created_at)?;
            insert_token(txn, user, &token)?;
            append_audit(txn, &audit)
        })
        .await
    }

    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenInfo>, StoreError> {
        self.read(move |txn| {
            let user_tokens = txn.open_multimap_table(USER_TOKENS).map_err(internal)?;
            let tokens = txn.open_table(TOKENS).map_err(internal)?;
            let mut listed = Vec::new();
            for id in user_tokens.get(user).map_err(internal)? {
                let id = id.map_err(internal)?;
                let Some(record) = tokens.get(id.value()).map_err(internal)? else {
                    continue;
                };
                let record: TokenRecord = decode(record.value())?;
                let id = TokenId(id.value().try_into().map_err(internal)?);
                listed.push(TokenInfo {
                    id,
                    details: record.details(),
                });
            }
            listed.sort_by_key(|token| (token.details.created_at, token.id));
            Ok(listed)
        })
        .await
    }

    async fn revoke_token(
        &self,
        user: UserId,
        id: TokenId,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.write(move |txn| {
            let mut tokens = txn.open_table(TOKENS).map_err(internal)?;
            let owner = tokens
                .get(id.0.as_slice())
                .map_err(internal)?
                .map(|value| decode::<TokenRecord>(value.value()))
                .transpose()?
                .map(|record| record.user);
            if owner != Some(user) {
                return Err(StoreError::TokenNotFound(id.to_hex()));
            }
            tokens.remove(id.0.as_slice()).map_err(internal)?;
            txn.open_multimap_table(USER_TOKENS)
                .map_err(internal)?
                .remove(user, id.0.as_slice())
                .map_err(internal)?;
            append_audit(txn, &audit)
        })
        .await
    }

    async fn set_user_disabled(
        &self,
        name: &str,
        disabled: bool,
        audit: AuditEvent,
    ) -> Result<User, StoreError> {
        let name = name.to_owned();
        self.write(move |txn| {
            let mut users = txn.open_table(USERS).map_err(internal)?;
            let mut record = user_record(&users, &name)?
                .ok_or_else(|| StoreError::UserNotFound(name.clone()))?;
            record.disabled = disabled;
            users
                .insert(name.to_lowercase().as_str(), encode(&record)?.as_slice())
                .map_err(internal)?;
            drop(users);
            if disabled {
                revoke_all_tokens(txn, record.id)?;
                // The unused invitations the user issued go with them.
                drop_invitations_where(txn, |invitation| invitation.created_by == record.id)?;
            }
            append_audit(txn, &audit)?;
            Ok(User {
                id: record.id,
                name: record.name,
            })
        })
        .await
    }

    async fn change_password(&self, change: PasswordChange) -> Result<(), StoreError> {
        self.write(move |txn| {
            let user = change.user;
            let key =
                user_key(txn, user)?.ok_or_else(|| StoreError::UserNotFound(format!("#{user}")))?;
            let mut users = txn.open_table(USERS).map_err(internal)?;
            let mut record =
                user_record(&users, &key)?.ok_or_else(|| StoreError::UserNotFound(key.clone()))?;
            if record.password_hash != change.old_password_hash {
                return Err(StoreError::PasswordChanged);
            }
            if record.disabled {
                return Err(StoreError::UserDisabled(record.name));
            }
            record.password_hash = change.new_password_hash;
            users
                .insert(key.as_str(), encode(&record)?.as_slice())
                .map_err(internal)?;
            drop(users);
            revoke_all_tokens(txn, user)?;
            insert_token(txn, user, &change.token)?;
            append_audit(txn, &change.audit)
        })
        .await
    }

    async fn rehash_password(
        &self,
        user: UserId,
        old_password_hash: &str,
        new_password_hash: &str,
    ) -> Result<bool, StoreError> {
        let old_password_hash = old_password_hash.to_owned();
        let new_password_hash = new_password_hash.to_owned();
        self.write(move |txn| {
            let Some(key) = user_key(txn, user)? else {
                return Ok(false);
            };
            let mut users = txn.open_table(USERS).map_err(internal)?;
            let Some(mut record) = user_record(&users, &key)? else {
                return Ok(false);
            };
            if record.password_hash != old_password_hash {
                return Ok(false);
            }
            record.password_hash = new_password_hash;
            users
                .insert(key.as_str(), encode(&record)?.as_slice())
                .map_err(internal)?;
            Ok(true)
        })
        .await
    }

    async fn token(&self, id: TokenId) -> Result<Option<StoredToken>, StoreError> {
        self.read(move |txn| {
            let tokens = txn.open_table(TOKENS).map_err(internal)?;
            let Some(record) = tokens
                .get(id.0.as_slice())
                .map_err(internal)?
                .map(|value| decode::<TokenRecord>(value.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let user_ids = txn.open_table(USER_IDS).map_err(internal)?;
            let users = txn.open_table(USERS).map_err(internal)?;
            Ok(Some(StoredToken {
                id,
                user: user_by_id(&user_ids, &users, record.user)?,
                secret_hash: record.secret_hash,
                details: record.details(),
            }))
        })
        .await
    }
}
