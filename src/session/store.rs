//! actix-session's storage backend, kept in the database so that every
//! instance sees every session and nothing else needs running.

use std::collections::HashMap;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration;

use crate::db::session::Owner;
use crate::db::{self, Db};
use crate::secret::{db_key, time_ordered_token};

use super::{HANDLE, USER_ID};

type State = HashMap<String, String>;

/// Sessions in the `sessions` table, keyed by the SHA-256 of the cookie's key.
#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// The row id for a session key: a leaked table gives no usable cookie.
fn row_id(key: &SessionKey) -> String {
    db_key(key.as_ref())
}

/// A fresh session key, in time order ([`time_ordered_token`]).
fn new_key() -> SessionKey {
    // 56 bytes: far below the limit of a cookie, the only way to fail.
    SessionKey::try_from(time_ordered_token()).unwrap_or_else(|_| generate_session_key())
}

/// The logged-in user and the session's handle, read from its state (whose
/// values actix-session keeps JSON-encoded).
fn owner(state: &State) -> (Option<i64>, Option<String>) {
    let user_id = state.get(USER_ID).and_then(|v| v.parse().ok());
    let handle = state
        .get(HANDLE)
        .and_then(|v| serde_json::from_str::<String>(v).ok());
    (user_id, handle)
}

fn expiry(ttl: &Duration) -> time::PrimitiveDateTime {
    db::now().saturating_add(*ttl)
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

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let json = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let key = new_key();
        let (id, expires_at) = (row_id(&key), expiry(ttl));
        let (user_id, handle) = owner(&state);
        self.db
            .write(move |conn| {
                let owner = Owner {
                    user_id,
                    handle: handle.as_deref(),
                };
                db::session::insert(conn, &id, &json, owner, expires_at)
            })
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let json =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let (id, expires_at) = (row_id(&key), expiry(ttl));
        let (user_id, handle) = owner(&state);
        let updated = self
            .db
            .write(move |conn| {
                let owner = Owner {
                    user_id,
                    handle: handle.as_deref(),
                };
                db::session::update(conn, &id, &json, owner, expires_at, db::now())
            })
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
