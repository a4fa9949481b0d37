//! Markdown to HTML that is safe to put in a family's browser: rendered with pulldown-cmark,
//! then cleaned by ammonia's allow-list (no scripts, no event attributes, no `javascript:`
//! links; links open safely in a new tab).

use std::collections::HashSet;

pub fn to_safe_html(markdown: &str) -> String {
    let parser = pulldown_cmark::Parser::new_ext(
        markdown,
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH,
    );
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    ammonia::Builder::default()
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_javascript_links_are_gone() {
        let html = to_safe_html(
            "**Great work**\n\n<script>alert(1)</script>\n\n<img src=x onerror=\"alert(2)\">\n\n[click](javascript:alert(3))",
        );
        assert!(html.contains("<strong>Great work</strong>"), "{html}");
        for bad in ["<script", "onerror", "javascript:", "alert(1)"] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
    }
}
