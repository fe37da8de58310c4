//! A real headless Chromium (Debian's `chromium`), driven over WebDriver through Debian's
//! `chromedriver`, both started on loopback for one test and stopped with it.

use std::path::Path;
use std::time::Duration;

pub use fantoccini::Locator;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::process::{Service, free_port};

/// A browser session; the driver and the browser stop when it is dropped.
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Service,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile, a 1280x900 window
    /// (for screenshots), and none of its calls to the outside (the network is closed).
    ///
    /// # Panics
    ///
    /// When either cannot start: `make setup` installs both.
    pub async fn start(log_dir: &Path) -> Self {
        let port = free_port();
        let driver = Service::new(
            "chromedriver",
            "chromedriver",
            &[&format!("--port={port}"), "--allowed-ips=127.0.0.1"],
            Vec::new(),
            log_dir,
            port,
        );
        driver.start();
        let profile = tempfile::tempdir().expect("a temporary directory");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        // Plain HTTP: the driver listens on loopback.
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "chromedriver refused a session: {error}\n{}",
                    driver.log_tail()
                )
            });
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Opens `url` and waits until its document loaded.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("the page opens");
    }

    /// The text of the first element matching `css`, waiting up to 5 s for it.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no element `{css}`: {error}"))
            .text()
            .await
            .expect("the element has text")
    }

    /// Types `text` into the field matching `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no field `{css}`: {error}"))
            .send_keys(text)
            .await
            .expect("the field takes text");
    }

    /// Clicks the link or button matching `css` and waits until the page it leads to replaced
    /// this one (the old page's root went stale), so what is read next is the new page.
    ///
    /// # Panics
    ///
    /// When no page replaced this one within 10 s.
    pub async fn click(&self, css: &str) {
        let old_root = self
            .client
            .find(Locator::Css("html"))
            .await
            .expect("the page has a root");
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no element `{css}`: {error}"))
            .click()
            .await
            .expect("the element takes a click");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while old_root.tag_name().await.is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "clicking `{css}` led to no new page"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("body"))
            .await
            .expect("the new page has a body");
    }

    /// The path of the page shown.
    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the browser has a page")
            .path()
            .to_owned()
    }

    /// The page's HTML as the browser holds it.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("the page has a source")
    }

    /// Runs `script` in the page and returns its value.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("the script runs")
    }

    /// Writes a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(path, png).expect("the screenshot is written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The session ends with the driver; chromedriver stops the browsers it started.
        self.driver.kill();
    }
}
