//! How the mirror asks the upstream over HTTP: one client with its timeouts and redirect
//! policy, the upstream's token sent only to the upstream's own origin, failed requests
//! classified as 502 or 504, and bodies read up to a limit.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::{MirrorError, MirrorErrorKind};
use crate::config::MirrorConfig;

/// The HTTP client for the upstream, with the upstream's token when one is configured.
#[derive(Debug)]
pub(crate) struct UpstreamClient {
    client: reqwest::Client,
    /// The upstream's token, and the origin it may be sent to.
    credentials: Option<(http::HeaderValue, url::Origin)>,
}

impl UpstreamClient {
    /// Builds the client for the upstream index at `upstream`; each request may take at most
    /// `timeout`.
    ///
    /// # Errors
    ///
    /// Fails when the HTTP client cannot be built, the token is not a header value or the
    /// upstream's URL does not parse.
    pub(crate) fn new(
        config: &MirrorConfig,
        upstream: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("ktra-mirror/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(redirect_policy())
            .build()?;
        let credentials = match &config.upstream_token {
            Some(token) => {
                let mut value =
                    http::HeaderValue::from_str(secrecy::ExposeSecret::expose_secret(token))
                        .map_err(|_| {
                            anyhow::anyhow!(
                                "setting KTRA_MIRROR_UPSTREAM_TOKEN: not a header value"
                            )
                        })?;
                value.set_sensitive(true);
                Some((value, url::Url::parse(upstream)?.origin()))
            }
            None => None,
        };
        Ok(Self {
            client,
            credentials,
        })
    }

    /// Starts a GET of `url`, with the upstream's token when `url` is on the upstream's own
    /// origin; crate files served from elsewhere (a CDN, presigned object store URLs) never
    /// see it.
    pub(crate) fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let request = self.client.get(url);
        match &self.credentials {
            Some((token, origin))
                if url::Url::parse(url).is_ok_and(|parsed| parsed.origin() == *origin) =>
            {
                request.header(http::header::AUTHORIZATION, token.clone())
            }
            _ => request,
        }
    }
}

/// Classifies a failed request: a timeout is a 504, anything else a 502.
pub(crate) fn transport_error(error: &reqwest::Error, what: &str) -> MirrorError {
    if error.is_timeout() {
        MirrorError::new(
            MirrorErrorKind::Timeout,
            format!(
                "the upstream registry did not answer in time for {what}, and the mirror has no copy"
            ),
            error.to_string(),
        )
    } else {
        MirrorError::new(
            MirrorErrorKind::Unreachable,
            format!(
                "the upstream registry could not be reached for {what}, and the mirror has no copy"
            ),
            format!("{error:?}"),
        )
    }
}

/// Reads a body of at most `limit` bytes.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
    what: &str,
) -> Result<Bytes, MirrorError> {
    let too_large = || {
        MirrorError::new(
            MirrorErrorKind::BadAnswer,
            format!("{what} is larger than the mirror accepts"),
            format!("more than {limit} bytes"),
        )
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| transport_error(&error, what))?
    {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Redirects the upstream's answers may follow: at most 10, and never from https to http,
/// which would send the request (and a same-host token) in clear.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 10 {
            return attempt.error("too many redirects");
        }
        let downgrade = attempt
            .previous()
            .last()
            .is_some_and(|previous| is_downgrade(previous, attempt.url()));
        if downgrade {
            attempt.error("refusing a redirect from https to http")
        } else {
            attempt.follow()
        }
    })
}

fn is_downgrade(from: &url::Url, to: &url::Url) -> bool {
    from.scheme() == "https" && to.scheme() != "https"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_to_http_redirects_are_refused() {
        let url = |text: &str| url::Url::parse(text).unwrap();
        assert!(is_downgrade(&url("https://h/a"), &url("http://h/a")));
        assert!(is_downgrade(
            &url("https://h:8443/a"),
            &url("http://h:8443/a")
        ));
        assert!(!is_downgrade(&url("https://h/a"), &url("https://cdn/a")));
        assert!(!is_downgrade(&url("http://h/a"), &url("https://h/a")));
        assert!(!is_downgrade(&url("http://h/a"), &url("http://h/b")));
    }
}
