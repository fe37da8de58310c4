//! READMEs as HTML: Markdown rendered as GitHub does it (tables, task lists, strikethrough,
//! footnotes), then sanitised, so that whatever a README holds (scripts, event handlers,
//! `javascript:` links, forms, frames) renders inert. Other formats are shown as plain text.

use ktra_store::{MetadataStore, StoreError};
use pulldown_cmark::{Event, Options, Parser};

use super::{CrateView, VersionView};

/// The README of `version` of `view` as sanitised HTML, rendered on the blocking pool; `None`
/// when the version has none.
///
/// # Errors
///
/// When the store fails.
pub async fn rendered(
    store: &dyn MetadataStore,
    view: &CrateView,
    version: &VersionView,
) -> Result<Option<String>, StoreError> {
    let Some(id) = &version.id else {
        return Ok(None);
    };
    let Some(text) = store.readme(&view.krate, id).await? else {
        return Ok(None);
    };
    let file = version
        .details
        .metadata
        .as_ref()
        .and_then(|metadata| metadata.readme_file.clone());
    ktra_core::task::spawn_blocking(move || to_html(&text, file.as_deref()))
        .await
        .map(Some)
        .map_err(|error| StoreError::Internal(error.to_string()))
}

/// Renders a README named `file` (its path in the package; Markdown when unknown).
pub fn to_html(text: &str, file: Option<&str>) -> String {
    let markdown = file.is_none_or(|file| {
        let lower = file.to_ascii_lowercase();
        lower.ends_with(".md") || lower.ends_with(".markdown") || !lower.contains('.')
    });
    if !markdown {
        let mut html = String::with_capacity(text.len() + 32);
        html.push_str("<pre class=\"readme-text\">");
        html.push_str(&ammonia::clean_text(text));
        html.push_str("</pre>");
        return html;
    }
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_GFM;
    // Task list boxes become characters, so no `input` of any kind survives sanitising.
    let events = Parser::new_ext(text, options).map(|event| match event {
        Event::TaskListMarker(done) => Event::Text(if done { "☑ " } else { "☐ " }.into()),
        other => other,
    });
    let mut unsafe_html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut unsafe_html, events);
    ammonia::Builder::default()
        .link_rel(Some("nofollow noopener noreferrer"))
        .add_generic_attributes(["align"])
        .clean(&unsafe_html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_made_inert() {
        let html = to_html(
            "# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n\n~~old~~ [ok](https://example.com) \
             [bad](javascript:alert(1)) <script>alert(1)</script> <img src=x onerror=alert(1)>\n\n\
             <a href=\"javascript:alert(2)\" onclick=\"alert(3)\">raw</a> <iframe src=\"https://x\"></iframe>\
             <input type=\"password\" name=\"p\">",
            Some("README.md"),
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<del>old</del>"), "{html}");
        assert!(html.contains("☑ done"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
        for inert in [
            "<script",
            "javascript:",
            "onerror",
            "onclick",
            "<iframe",
            "<input",
        ] {
            assert!(!html.contains(inert), "{inert} in {html}");
        }
    }

    #[test]
    fn other_formats_are_plain_text() {
        let html = to_html("<b>not bold</b>", Some("README.txt"));
        assert_eq!(
            html,
            "<pre class=\"readme-text\">&lt;b&gt;not&#32;bold&lt;&#47;b&gt;</pre>"
        );
    }
}
