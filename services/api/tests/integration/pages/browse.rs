//! The pages people browse, read over HTTP: what each shows, that a README renders inert, and
//! that the pages can be turned off.

use ktra_testing::fixtures::CrateFixture;
use reqwest::StatusCode;
use serde_json::json;

use super::page;
use crate::harness::{Backend, TestApp, assert_ok};

fn with_readme(name: &str, version: &str, readme: &str, homepage: &str) -> Vec<u8> {
    let fixture = CrateFixture::new(name, version).dep("serde", "^1");
    let mut metadata = fixture.metadata();
    metadata["readme"] = json!(readme);
    metadata["readme_file"] = json!("README.md");
    metadata["homepage"] = json!(homepage);
    metadata["keywords"] = json!(["tooling"]);
    metadata["deps"][0]["registry"] = json!("https://github.com/rust-lang/crates.io-index");
    CrateFixture::body_from(&metadata, &fixture.crate_file())
}

pub(crate) async fn pages_show_crates_readmes_versions_and_owners(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;
    let readme = "# Widget\n\nMakes **widgets**.\n\n<script>alert(1)</script>\
        <a href=\"javascript:alert(2)\" onmouseover=\"alert(3)\">x</a>";
    for version in ["1.0.0", "1.1.0"] {
        let body = with_readme("widget", version, readme, "javascript:alert(4)");
        assert_ok(&app.publish(Some(&token), body).await);
    }
    assert_ok(&app.yank(&token, "widget", "1.1.0").await);
    let user = CrateFixture::new("widget-user", "0.1.0").dep("widget", "^1");
    assert_ok(&app.publish(Some(&token), user.body()).await);

    let (status, home) = page(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        "<strong>2</strong> crates",
        "<strong>3</strong> versions",
        "href=\"/crates/widget-user\"",
        "[registries.ktra]",
        &format!("sparse+{}/index/", app.base),
        "cargo publish --workspace --registry ktra",
        "CARGO_REGISTRIES_KTRA_TOKEN",
    ] {
        assert!(
            home.contains(expected),
            "{expected} not in the home page:\n{home}"
        );
    }

    let (status, html) = page(&app, "/crates/widget").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        "<h1>widget <span class=\"version\">1.0.0</span>",
        "<h1>Widget</h1>",
        "<strong>widgets</strong>",
        "cargo add widget@1.0.0 --registry ktra",
        "href=\"https://crates.io/crates/serde\"",
        "href=\"/users/alice\"",
        "href=\"/crates/widget/1.1.0\">1.1.0</a> <span class=\"yanked\">yanked</span>",
        "<dt>License</dt><dd>MIT</dd>",
        "<dt>Edition</dt><dd>2021</dd>",
        "href=\"/search?q=tooling\"",
    ] {
        assert!(
            html.contains(expected),
            "{expected} not in the crate page:\n{html}"
        );
    }
    for inert in ["<script", "javascript:", "onmouseover", "Homepage"] {
        assert!(!html.contains(inert), "{inert} in the crate page:\n{html}");
    }
    let (status, html) = page(&app, "/crates/widget/1.1.0").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(
            "<span class=\"version\">1.1.0</span> <span class=\"yanked\">yanked</span></h1>"
        ),
        "{html}"
    );
    let (_, html) = page(&app, "/crates/widget-user").await;
    assert!(
        html.contains("href=\"/crates/widget\">widget</a>"),
        "{html}"
    );

    let (status, html) = page(&app, "/search?q=widget").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("2 found") && html.contains("href=\"/crates/widget-user\""),
        "{html}"
    );
    let (_, html) = page(&app, "/search?q=").await;
    assert!(
        html.contains("All crates") && html.contains("2 found"),
        "{html}"
    );

    let (status, html) = page(&app, "/users/alice").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Owns 2 crates."), "{html}");

    for (path, expected) in [
        ("/crates/missing", "There is no crate named missing."),
        ("/crates/widget/9.0.0", "widget has no version 9.0.0."),
        ("/users/nobody", "There is no user named nobody."),
    ] {
        let (status, html) = page(&app, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(html.contains(expected), "{path}: {html}");
    }
    let (status, _) = page(&app, "/search?q=x&page=two").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let css = app.get_with("/static/ktra.css", &[]).await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(
        css.text()
            .await
            .unwrap()
            .contains("prefers-color-scheme:dark")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pages_can_be_turned_off() {
    let app = TestApp::start_on(Backend::Embedded, &[("KTRA_UI_ENABLED", "false")]).await;
    for path in ["/", "/crates/anything", "/static/ktra.css"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(body["errors"][0]["detail"].is_string(), "{path}: {body}");
    }
}

crate::on_every_backend!(pages_show_crates_readmes_versions_and_owners);
