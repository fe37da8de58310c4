//! The pages over HTTP, as a browser sends its requests (a real browser drives them in
//! `tests/e2e/browser.rs`): what they show, and signing in, tokens, passwords and
//! administration with sessions and form tokens.

mod accounts;
mod browse;

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::harness::TestApp;

/// GETs a page without cookies; checks that a 200 is HTML.
pub(crate) async fn page(app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = app.get_with(path, &[]).await;
    let status = response.status();
    if status == StatusCode::OK {
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
    }
    (status, response.text().await.unwrap())
}

/// A person with a browser: keeps cookies, follows no redirect by itself.
pub(crate) struct Visitor<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

/// A page's answer: status, where it redirects, and the HTML.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) set_cookies: Vec<String>,
    pub(crate) html: String,
}

impl Answer {
    /// The value of the first form token (`name="csrf" value="..."`) on the page.
    pub(crate) fn csrf(&self) -> String {
        field_value(&self.html, "csrf").expect("the page has a form token")
    }
}

/// The value of the first hidden field `name` in `html`.
pub(crate) fn field_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

impl<'a> Visitor<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn answer(&mut self, response: reqwest::Response) -> Answer {
        let set_cookies: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect();
        for line in &set_cookies {
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || line.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Answer {
            status: response.status(),
            location: response
                .headers()
                .get(LOCATION)
                .map(|value| value.to_str().unwrap().to_owned()),
            set_cookies,
            html: response.text().await.unwrap(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) async fn get(&mut self, path: &str) -> Answer {
        let response = self
            .client
            .get(self.app.url(path))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.answer(response).await
    }

    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let response = self
            .client
            .post(self.app.url(path))
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.answer(response).await
    }

    /// Signs in through the form; asserts it worked.
    pub(crate) async fn sign_in(&mut self, name: &str, password: &str) {
        let form = self.get("/login").await;
        let answer = self
            .post(
                "/login",
                &[
                    ("csrf", &form.csrf()),
                    ("name", name),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.html);
        assert!(self.cookies.contains_key("ktra_session"));
    }
}
