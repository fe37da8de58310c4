//! Requests the tests send, named for what they ask of the registry.

use ktra_testing::fixtures::CrateFixture;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{PASSWORD, TestApp};
use crate::harness::assert_ok;

/// A status and the JSON body that came with it.
pub(crate) type Reply = (StatusCode, Value);

impl TestApp {
    /// Creates a user with password [`PASSWORD`] and returns the user's token.
    pub(crate) async fn create_user(&self, name: &str) -> String {
        token_of(&self.register(name, &json!({"password": PASSWORD})).await)
    }

    /// Asks to register `name` with `body` (a password, perhaps an invitation).
    pub(crate) async fn register(&self, name: &str, body: &Value) -> Reply {
        self.post_json(&format!("/ktra/api/v1/new_user/{name}"), body)
            .await
    }

    /// Logs in as `name` with `password`.
    pub(crate) async fn login(&self, name: &str, password: &str) -> Reply {
        self.post_json(
            &format!("/ktra/api/v1/login/{name}"),
            &json!({"password": password}),
        )
        .await
    }

    /// Publishes a generated crate `name` at `version` with `token`.
    pub(crate) async fn publish_crate(&self, token: &str, name: &str, version: &str) -> Reply {
        self.publish(Some(token), CrateFixture::new(name, version).body())
            .await
    }

    /// Sends a GET with `token`.
    pub(crate) async fn get_as(&self, token: &str, path: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// Sends a DELETE with `token`.
    pub(crate) async fn delete_as(&self, token: &str, path: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Yanks `name@version` with `token`.
    pub(crate) async fn yank(&self, token: &str, name: &str, version: &str) -> Reply {
        self.delete_as(token, &format!("/api/v1/crates/{name}/{version}/yank"))
            .await
    }

    /// Adds (`PUT`) or removes (`DELETE`) `users` as owners of `name`.
    async fn change_owners(
        &self,
        method: Method,
        token: &str,
        name: &str,
        users: &[&str],
    ) -> Reply {
        let path = format!("/api/v1/crates/{name}/owners");
        let body = json!({ "users": users });
        self.call(method, &path, Some(token), Some(&body)).await
    }

    /// Adds `user` as an owner of crate `name` with `token`.
    pub(crate) async fn add_owner(&self, token: &str, name: &str, user: &str) -> Reply {
        self.change_owners(Method::PUT, token, name, &[user]).await
    }

    /// Removes `user` from the owners of crate `name` with `token`.
    pub(crate) async fn remove_owner(&self, token: &str, name: &str, user: &str) -> Reply {
        self.change_owners(Method::DELETE, token, name, &[user])
            .await
    }

    /// Asks for a new token (`request` names it and its limits) with `token`.
    pub(crate) async fn create_token(&self, token: &str, request: &Value) -> Reply {
        self.call(
            Method::POST,
            "/ktra/api/v1/tokens",
            Some(token),
            Some(request),
        )
        .await
    }

    /// Sends an anonymous GET of `path` with `headers`, and returns the response as it came.
    pub(crate) async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// Sends an anonymous GET and returns the status and the body's bytes, JSON or not.
    pub(crate) async fn get_bytes(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.bytes().await.unwrap().to_vec())
    }

    /// POSTs JSON and returns the status and JSON body.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let response = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        read_json(response).await
    }

    /// Sends a publish body with an optional token.
    pub(crate) async fn publish(&self, token: Option<&str>, body: Vec<u8>) -> Reply {
        let mut request = self.client.put(self.url("/api/v1/crates/new")).body(body);
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        read_json(request.send().await.unwrap()).await
    }

    /// Sends an anonymous GET.
    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, None).await
    }

    /// Sends a request with a token and an optional JSON body.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        read_json(request.send().await.unwrap()).await
    }

    /// Returns a crate's index file as served, or `None` on 404.
    pub(crate) async fn index_lines(&self, name: &str) -> Option<Vec<Value>> {
        let path = ktra_core::index::index_path(name);
        let response = self
            .client
            .get(self.url(&format!("/index/{path}")))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        assert!(
            text.ends_with('\n'),
            "index files end with a newline: {text:?}"
        );
        Some(
            text.lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect(),
        )
    }

    /// Returns every crate file key in the blob store.
    pub(crate) async fn blob_keys(&self) -> Vec<String> {
        self.blobs.list("crates").await.unwrap()
    }
}

/// Reads a response as (status, JSON), asserting the body is JSON.
pub(crate) async fn read_json(response: reqwest::Response) -> Reply {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("status {status}: body is not JSON ({error}): {text:?}"));
    (status, body)
}

/// Asserts that `reply` is a 200 with a token, and returns the token.
pub(crate) fn token_of(reply: &Reply) -> String {
    assert_ok(reply);
    reply.1["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {}", reply.1))
        .to_owned()
}
