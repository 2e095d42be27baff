//! HTML: the text a reader would see, via `scraper` (html5ever's spec-compliant parser, so
//! entities, unclosed tags and implied elements behave as in a browser).

use scraper::{Html, Node};

/// Elements whose content is never rendered as text. `head` is handled separately because
/// its `title` is worth indexing.
const HIDDEN: &[&str] = &[
    "script", "style", "noscript", "template", "iframe", "object", "canvas", "svg", "math",
    "datalist",
];

/// Elements that start a new line when rendered; without a break between them, words from
/// adjacent blocks would run together (a heading "Title" and a paragraph "Intro" would be
/// indexed as one word).
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "legend",
    "li",
    "main",
    "nav",
    "ol",
    "option",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "td",
    "th",
    "title",
    "tr",
    "ul",
];

/// Visible text with one line per block and whitespace inside a line collapsed.
pub(super) fn to_text(source: &str) -> String {
    render(&Html::parse_document(source))
}

/// For HTML embedded in Markdown, which is a fragment rather than a document.
pub(super) fn fragment_to_text(source: &str) -> String {
    render(&Html::parse_fragment(source))
}

fn render(document: &Html) -> String {
    let mut raw = String::new();
    // An explicit stack rather than recursion: nesting depth is attacker-controlled and a
    // stack overflow would abort the whole process, uncatchably.
    let mut stack = vec![(document.tree.root(), false)];
    // Inside `pre`, source line breaks are rendered; elsewhere they are just spaces.
    let mut pre_depth = 0usize;
    while let Some((node, closing)) = stack.pop() {
        let element = match node.value() {
            Node::Text(text) if pre_depth > 0 => {
                raw.push_str(text);
                continue;
            }
            Node::Text(text) => {
                raw.extend(
                    text.chars()
                        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
                );
                continue;
            }
            Node::Element(element) => element,
            Node::Document | Node::Fragment => {
                stack.extend(node.children().rev().map(|child| (child, false)));
                continue;
            }
            Node::Doctype(_) | Node::Comment(_) | Node::ProcessingInstruction(_) => continue,
        };
        let name = element.name();
        if BLOCKS.contains(&name) {
            raw.push('\n');
        }
        if name == "pre" {
            if closing {
                pre_depth -= 1;
            } else {
                pre_depth += 1;
            }
        }
        if closing || HIDDEN.contains(&name) {
            continue;
        }
        if name == "head" {
            // Only the title is visible (in the tab) and worth finding.
            let titles = node
                .descendants()
                .filter(|d| d.value().as_element().is_some_and(|e| e.name() == "title"));
            stack.extend(
                titles
                    .map(|t| (t, false))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev(),
            );
            continue;
        }
        stack.push((node, true));
        stack.extend(node.children().rev().map(|child| (child, false)));
    }
    tidy_lines(&raw)
}

/// Collapses whitespace within lines and drops empty lines.
fn tidy_lines(raw: &str) -> String {
    raw.lines()
        .map(super::collapse_whitespace)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use crate::extract::{Limits, Segment, extract};

    fn html_text(source: &str) -> String {
        let segments = extract(
            "text/html; charset=utf-8",
            source.as_bytes(),
            &Limits::default(),
        )
        .unwrap();
        match segments.as_slice() {
            [
                Segment {
                    at_ms: None,
                    page: None,
                    text,
                },
            ] => text.clone(),
            [] => String::new(),
            other => panic!("expected one segment, got {other:?}"),
        }
    }

    #[test]
    fn visible_text_only_with_entities_decoded() {
        let source = r#"<!DOCTYPE html>
<html><head>
  <meta charset="utf-8"><title>太极拳 &amp; Qigong</title>
  <style>body { color: red } .secret::after { content: "css" }</style>
  <script>var hidden = "<p>not text</p>";</script>
  <link rel="stylesheet" href="x.css">
</head>
<body>
  <h1>Lesson&nbsp;1</h1><p>Fish &lt;&gt; chips &mdash; caf&eacute; &#x4E66;&#38505;</p>
  <div>one<span>two</span> three</div>
  <noscript>enable JavaScript</noscript>
  <template><p>template text</p></template>
  <!-- a comment -->
  <ul><li>first<li>second</ul>
  <p>line<br>break
     with   spaces</p>
  <pre>code line 1
code   line 2</pre>
  <script type="module">import x from "y";</script>
</body></html>"#;
        assert_eq!(
            html_text(source),
            "太极拳 & Qigong\nLesson 1\nFish <> chips — café 书险\nonetwo three\nfirst\nsecond\nline\nbreak with spaces\ncode line 1\ncode line 2"
        );
    }

    #[test]
    fn malformed_html_still_yields_text() {
        assert_eq!(
            html_text("<p>unclosed <b>bold <i>both</p>tail &bogus; <"),
            "unclosed bold both\ntail &bogus; <"
        );
        assert_eq!(html_text(""), "");
        assert_eq!(html_text("<script>only script</script>"), "");
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let depth = 100_000;
        let source = format!("{}deep{}", "<span>".repeat(depth), "</span>".repeat(depth));
        assert_eq!(html_text(&source), "deep");
    }
}
