//! Markdown to HTML that is safe to put in a family's browser: rendered with pulldown-cmark,
//! then cleaned by ammonia's allow-list (no scripts, no event attributes, no `javascript:`
//! links; links open safely in a new tab).
//!
//! Images load without a click, in browsers and in feed readers, so a remote image would tell
//! a third party who reads the class and from where. An image stays only when it shows one of
//! the class's own attachments by its relative URL (`/api/v1/attachments/{id}`, or its
//! `/thumbnail`); every other image is dropped (a Markdown image leaves its alt text). Links
//! stay: they load nothing until someone follows them.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use pulldown_cmark::{Event, Tag, TagEnd};

/// The path every attachment URL starts with.
const ATTACHMENTS: &str = "/api/v1/attachments/";

/// At most this many attachment references of one post are looked up.
pub const MAX_IMAGE_REFS: usize = 20;

/// The attachment an image `src` shows, if it is a relative attachment URL.
fn attachment_id(src: &str) -> Option<i64> {
    let rest = src.strip_prefix(ATTACHMENTS)?;
    let digits = rest.strip_suffix("/thumbnail").unwrap_or(rest);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Attachment ids the text mentions by URL (a superset of those its images show), so the
/// caller can ask which are the class's own before rendering.
pub fn attachment_refs(markdown: &str) -> Vec<i64> {
    let mut ids = BTreeSet::new();
    for (at, _) in markdown.match_indices(ATTACHMENTS) {
        let digits: String = markdown[at + ATTACHMENTS.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(id) = digits.parse() {
            ids.insert(id);
        }
        if ids.len() == MAX_IMAGE_REFS {
            break;
        }
    }
    ids.into_iter().collect()
}

/// Safe HTML of `markdown`, where images may show only the attachments in `own_attachments`
/// (those of the post's class).
pub fn to_safe_html(markdown: &str, own_attachments: &HashSet<i64>) -> String {
    let own = Arc::new(own_attachments.clone());
    let keeps = {
        let own = own.clone();
        move |src: &str| attachment_id(src).is_some_and(|id| own.contains(&id))
    };
    let parser = pulldown_cmark::Parser::new_ext(
        markdown,
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH,
    );
    // Markdown images: a refused one leaves its alt text as plain text.
    let mut open: Vec<bool> = Vec::new();
    let events = parser.filter(|event| match event {
        Event::Start(Tag::Image { dest_url, .. }) => {
            let kept = keeps(dest_url);
            open.push(kept);
            kept
        }
        Event::End(TagEnd::Image) => open.pop().unwrap_or(true),
        _ => true,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    // Images written as HTML: ammonia drops a `src` that is not the class's own, then the
    // `img` left without one goes too.
    let clean = ammonia::Builder::default()
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(move |element, attribute, value| {
            if element == "img" && attribute == "src" {
                let kept = attachment_id(value).is_some_and(|id| own.contains(&id));
                return kept.then(|| value.into());
            }
            Some(value.into())
        })
        .clean(&html)
        .to_string();
    drop_images_without_src(&clean)
}

/// Removes `img` tags without a `src` from ammonia's output. That output is html5ever's
/// serialization: text has `<` escaped, so outside a tag a `<` always opens one; attribute
/// values are double-quoted with `"` escaped, so a `>` inside quotes never closes one.
fn drop_images_without_src(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tag = &rest[start..start + tag_length(&rest[start..])];
        if !is_img(tag) || has_attribute(tag, "src") {
            out.push_str(tag);
        }
        rest = &rest[start + tag.len()..];
    }
    out.push_str(rest);
    out
}

/// The length of the tag at the start of `text`, up to its closing `>` outside quotes.
fn tag_length(text: &str) -> usize {
    let mut quoted = false;
    for (at, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '>' if !quoted => return at + 1,
            _ => {}
        }
    }
    text.len()
}

fn is_img(tag: &str) -> bool {
    tag.strip_prefix("<img")
        .is_some_and(|rest| rest.starts_with([' ', '>', '/']))
}

/// Whether the tag has the attribute (looked for outside attribute values).
fn has_attribute(tag: &str, name: &str) -> bool {
    let wanted = format!(" {name}=");
    let mut quoted = false;
    for (at, c) in tag.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && tag[at..].starts_with(&wanted) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_javascript_links_are_gone() {
        let html = to_safe_html(
            "**Great work**\n\n<script>alert(1)</script>\n\n<img src=x onerror=\"alert(2)\">\n\n[click](javascript:alert(3))",
            &HashSet::new(),
        );
        assert!(html.contains("<strong>Great work</strong>"), "{html}");
        for bad in ["<script", "onerror", "javascript:", "alert(1)"] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
    }

    #[test]
    fn only_own_attachments_show_as_images() {
        let own = HashSet::from([7]);
        let html = to_safe_html(
            "![ours](/api/v1/attachments/7/thumbnail) ![theirs](https://evil.example/a.png) \
             ![other class](/api/v1/attachments/8) ![sneaky](//evil.example/b.png)\n\n\
             <img src=\"https://evil.example/c.png\"> <img src=\"/api/v1/attachments/7\">\n\n\
             [a link](https://example.org/page)",
            &own,
        );
        assert!(
            html.contains("<img src=\"/api/v1/attachments/7/thumbnail\" alt=\"ours\">"),
            "{html}"
        );
        assert!(
            html.contains("<img src=\"/api/v1/attachments/7\">"),
            "{html}"
        );
        assert_eq!(
            html.matches("<img").count(),
            2,
            "no image without its source: {html}"
        );
        assert!(!html.contains("evil.example"), "{html}");
        assert!(!html.contains("attachments/8"), "{html}");
        assert!(
            html.contains("theirs") && html.contains("other class"),
            "{html}"
        );
        assert!(html.contains("href=\"https://example.org/page\""), "{html}");
    }

    #[test]
    fn images_without_a_source_go_and_nothing_else_does() {
        assert_eq!(
            drop_images_without_src(
                "<p title=\"<img>\">a<img alt=\"x > src=y\">b<img src=\"/s\" alt=\"\"><imgx></p>"
            ),
            "<p title=\"<img>\">ab<img src=\"/s\" alt=\"\"><imgx></p>"
        );
        let html = to_safe_html(
            "<p title=\"<img src=x>\">hi</p><img alt='a\"b' src=\"https://evil.example/x\">",
            &HashSet::new(),
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("hi"), "{html}");
    }

    #[test]
    fn references_are_found_and_capped() {
        assert_eq!(
            attachment_refs("![a](/api/v1/attachments/12) x /api/v1/attachments/3/thumbnail /api/v1/attachments/x"),
            vec![3, 12]
        );
        let many: String = (0..100)
            .map(|i| format!("/api/v1/attachments/{i} "))
            .collect();
        assert_eq!(attachment_refs(&many).len(), MAX_IMAGE_REFS);
        assert_eq!(attachment_id("/api/v1/attachments/5/thumbnail"), Some(5));
        assert_eq!(attachment_id("/api/v1/attachments/5/../6"), None);
        assert_eq!(attachment_id("https://x/api/v1/attachments/5"), None);
    }
}
