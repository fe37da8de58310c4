//! Named, expiring, scoped tokens over HTTP: each scope admits what it names and refuses the
//! rest with 403 and a clear message; tokens are listed without secrets, revoked and expire.

use serde_json::Value;

use crate::harness::{TestApp, token_of};

mod expiry;
mod imported;
mod private_registry;
mod scopes;

/// Creates a token for the holder of `token` and returns its text.
async fn scoped(app: &TestApp, token: &str, request: Value) -> String {
    let reply = app.create_token(token, &request).await;
    assert_eq!(reply.1["name"], request["name"]);
    token_of(&reply)
}
