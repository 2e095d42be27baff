//! Markdown: the prose, link texts and code, without markup symbols or URLs.

use pulldown_cmark::{Event, Options, Parser, TagEnd};

pub(super) fn to_text(source: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut out = String::new();
    let mut html_block = String::new();
    let mut in_metadata = false;
    for event in Parser::new_ext(source, options) {
        match event {
            Event::Start(pulldown_cmark::Tag::MetadataBlock(_)) => in_metadata = true,
            Event::End(TagEnd::MetadataBlock(_)) => in_metadata = false,
            // Front matter is configuration, not content.
            _ if in_metadata => {}
            Event::Text(text)
            | Event::Code(text)
            | Event::InlineMath(text)
            | Event::DisplayMath(text) => out.push_str(&text),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak | Event::Rule => out.push('\n'),
            // Block HTML may carry real prose (`<details>`, `<table>`), so it is rendered
            // like any HTML rather than dropped; inline tags just vanish, their content
            // arrives as ordinary text events.
            Event::Html(html) => html_block.push_str(&html),
            Event::End(TagEnd::HtmlBlock) => {
                out.push('\n');
                out.push_str(&super::html::fragment_to_text(&html_block));
                out.push('\n');
                html_block.clear();
            }
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::BlockQuote(_)
                | TagEnd::CodeBlock
                | TagEnd::Item
                | TagEnd::TableRow
                | TagEnd::TableHead
                | TagEnd::FootnoteDefinition
                | TagEnd::DefinitionListTitle
                | TagEnd::DefinitionListDefinition,
            ) => out.push('\n'),
            Event::End(TagEnd::TableCell) => out.push(' '),
            _ => {}
        }
    }
    out.lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use crate::extract::{Limits, Segment, extract};

    fn md_text(source: &str) -> String {
        let segments = extract("text/markdown", source.as_bytes(), &Limits::default()).unwrap();
        match segments.as_slice() {
            [
                Segment {
                    at_ms: None,
                    page: None,
                    text,
                },
            ] => text.clone(),
            other => panic!("expected one segment, got {other:?}"),
        }
    }

    #[test]
    fn text_without_markup() {
        let source = "---\ntitle: front matter\n---\n\
# 书法 *Calligraphy*\n\
\n\
Some **bold**, _italic_ and ~~struck~~ text with a [link](https://example.org \"t\")\n\
and an ![alt text](img.png) image; `inline code` too.\n\
\n\
```rust\nfn main() {}\n```\n\
\n\
- [x] done item\n\
- plain item\n\
\n\
| a | b |\n|---|---|\n| 1 | 2 |\n\
\n\
> quoted\n\
\n\
<div class=\"note\">\n<b>HTML</b> &amp; block\n</div>\n\
\n\
Footnote[^1].\n\n[^1]: The note.\n";
        assert_eq!(
            md_text(source),
            "书法 Calligraphy\n\
Some bold, italic and struck text with a link and an alt text image; inline code too.\n\
fn main() {}\n\
done item\n\
plain item\n\
a b\n\
1 2\n\
quoted\n\
HTML & block\n\
Footnote.\n\
The note."
        );
    }
}
