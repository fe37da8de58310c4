//! Users imported from Ktra: their hashes log in, are replaced by ours, and their tokens go on
//! working.

use ktra_testing::fixtures::CrateFixture;
use reqwest::StatusCode;

use crate::harness::{Backend, TestApp};

/// A hash as Ktra made them (Argon2id, m=4096, t=3, p=4), of `password`.
fn ktra_hash(password: &str) -> String {
    use argon2::password_hash::PasswordHasher as _;
    let params = argon2::Params::new(4096, 3, 4, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes())
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_imported_hash_logs_in_and_is_replaced_by_ours_keeping_the_tokens() {
    for backend in [Backend::Embedded, Backend::RedisS3] {
        let app = TestApp::start_on(backend, &[]).await;
        let imported = ktra_hash("ktra password");
        let token =
            ktra_store::model::ApiToken::from_imported("aQkGKnM77Wa1SYkXiPPIqbkWvcIM5G8U").unwrap();
        app.store
            .create_user(ktra_store::model::NewUser {
                name: "kate".to_owned(),
                password_hash: imported,
                token: token.to_new_token("imported from Ktra", chrono::Utc::now()),
                invitation: None,
                audit: ktra_store::model::AuditEvent {
                    at: chrono::Utc::now(),
                    actor: None,
                    action: "user.create".to_owned(),
                    target: "kate".to_owned(),
                    client: None,
                    detail: Some("imported from Ktra".to_owned()),
                },
            })
            .await
            .unwrap();
        for _ in 0..2 {
            let (status, body) = app.login("kate", "ktra password").await;
            assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        }
        let stored = app.store.user_credentials("kate").await.unwrap().unwrap();
        assert!(
            stored
                .password_hash
                .starts_with("$argon2id$v=19$m=1024,t=1,"),
            "{backend:?}: {}",
            stored.password_hash
        );
        // Ktra's token still publishes.
        let (status, body) = app
            .publish(
                Some("aQkGKnM77Wa1SYkXiPPIqbkWvcIM5G8U"),
                CrateFixture::new("kates_crate", "0.1.0").body(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        app.stop().await;
    }
}
