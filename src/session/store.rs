//! actix-session's storage backend, kept in the database so that every
//! instance sees every session and nothing else needs running.

use std::collections::HashMap;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration;

use crate::db::{self, Db, DbConn, DbError};

/// Sessions in the `sessions` table, keyed by the SHA-256 of the cookie's key.
#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
    /// The idle limit, as actix-session is configured with it (`save`'s `ttl`).
    ttl: Duration,
}

impl DbSessionStore {
    pub fn new(db: Db, ttl: Duration) -> Self {
        Self { db, ttl }
    }

    /// The idle limit this store was made with.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Stores `state` as a new session under `key` on `conn`, inside the
    /// caller's own write: what `save` does, for a session opened ahead of
    /// it ([`super::UserSession::log_in_linked`]).
    pub(super) fn insert_on(
        &self,
        conn: &mut DbConn,
        key: &str,
        state: &State,
    ) -> Result<(), DbError> {
        let json = serde_json::to_string(state)
            .map_err(|e| diesel::result::Error::SerializationError(e.into()))?;
        db::session::insert(conn, &super::db_key(key), &json, expiry(&self.ttl))
    }
}

/// The row id for a session key: a leaked table gives no usable cookie.
fn row_id(key: &SessionKey) -> String {
    super::db_key(key.as_ref())
}

/// A fresh session key, in time order ([`super::time_ordered_token`]).
pub(super) fn new_key() -> SessionKey {
    let token = super::time_ordered_token();
    // 56 bytes: far below the limit of a cookie, the only way to fail.
    SessionKey::try_from(token).unwrap_or_else(|_| generate_session_key())
}

fn expiry(ttl: &Duration) -> time::PrimitiveDateTime {
    db::now().saturating_add(*ttl)
}

pub(super) type State = HashMap<String, String>;

/// The key of a session that is stored already, if `state` says so (and
/// then no longer says it): see [`super::UserSession::log_in_linked`].
fn take_presaved(state: &mut State) -> Option<SessionKey> {
    let key: String = serde_json::from_str(&state.remove(super::PRESAVED)?).ok()?;
    SessionKey::try_from(key).ok()
}

impl SessionStore for DbSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let id = row_id(session_key);
        let stored = self
            .db
            .run(move |conn| db::session::load(conn, &id, db::now()))
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        stored
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(&self, mut state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        if let Some(key) = take_presaved(&mut state) {
            return Ok(key);
        }
        let json = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let key = new_key();
        let (id, expires_at) = (row_id(&key), expiry(ttl));
        self.db
            .write(move |conn| db::session::insert(conn, &id, &json, expires_at))
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        mut state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        // Only a fresh key is ever stored ahead; an existing one never is.
        take_presaved(&mut state);
        let json =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let (id, expires_at) = (row_id(&key), expiry(ttl));
        let updated = self
            .db
            .write(move |conn| db::session::update(conn, &id, &json, expires_at, db::now()))
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        if updated {
            return Ok(key);
        }
        // The session ended meanwhile (logged out, expired, ended from another
        // session): a vanished session is a logged-out one. Nothing of its
        // state is stored again, under any key; the browser gets a key that
        // names no session.
        Ok(new_key())
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let (id, expires_at) = (row_id(key), expiry(ttl));
        Ok(self
            .db
            .write(move |conn| db::session::touch(conn, &id, expires_at))
            .await?)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        let id = row_id(key);
        Ok(self
            .db
            .write(move |conn| db::session::delete(conn, &id))
            .await?)
    }
}
