//! PDF: one segment per page, pages counted from 1.
//!
//! `pdf-extract` gives the best text (word spacing from glyph positions, many font
//! encodings) but panics on fonts it does not support, e.g. CJK fonts that are not embedded
//! and use a predefined `CMap` such as `UniGB-UCS2-H`, which is common in Chinese
//! documents. `lopdf`'s own, simpler extractor handles those. So each page goes through
//! `pdf-extract` with its panic caught, and falls back to `lopdf`.
//!
//! The file is loaded twice: once by `lopdf` 0.47 (ours), which bounds stream
//! decompression and so rejects decompression bombs before anything else runs, and once
//! by the `lopdf` 0.42 that `pdf-extract` is built on (the two versions' documents are
//! different types).

use std::panic::{self, AssertUnwindSafe};

use lopdf::Document;

use super::{Collector, ExtractError, collapse_whitespace};

/// Bound on one page's decompressed content streams. Real pages are kilobytes to a few
/// megabytes; this only stops a crafted stream from inflating without limit.
const MAX_PAGE_CONTENT_BYTES: usize = 32 * 1024 * 1024;

pub(super) fn extract(bytes: &[u8], out: &mut Collector<'_>) -> Result<(), ExtractError> {
    let mut doc = Document::load_mem(bytes).map_err(|e| ExtractError::Malformed(e.to_string()))?;
    if doc.is_encrypted() {
        // Many "protected" PDFs only restrict printing and open with the empty password.
        doc.decrypt("")
            .map_err(|e| ExtractError::Malformed(format!("encrypted PDF: {e}")))?;
    }
    let mut rich = RichExtractor::load(bytes);
    for (page_number, page_id) in doc.get_pages() {
        if out.is_full() {
            break;
        }
        // Checked with our bounded decoder first, because `pdf-extract` decodes the same
        // streams without any limit.
        if doc
            .get_page_content_with_limit(page_id, MAX_PAGE_CONTENT_BYTES)
            .is_err()
        {
            continue;
        }
        let text = rich
            .page_text(page_number)
            .filter(|text| !text.trim().is_empty())
            .or_else(|| lopdf_page_text(&doc, page_number))
            .unwrap_or_default();
        out.push(None, Some(page_number), &collapse_whitespace(&text));
    }
    Ok(())
}

/// `pdf-extract` over one document, given up on at its first panic: a panic almost always
/// comes from a font, fonts are shared across pages, and each panic costs a stderr line
/// from the panic hook, so retrying on every page of a 300-page book would only add noise.
struct RichExtractor {
    doc: Option<pdf_extract::Document>,
}

impl RichExtractor {
    fn load(bytes: &[u8]) -> Self {
        let doc = panic::catch_unwind(|| {
            let mut doc = pdf_extract::Document::load_mem(bytes).ok()?;
            if doc.is_encrypted() {
                doc.decrypt("").ok()?;
            }
            Some(doc)
        });
        Self {
            doc: doc.ok().flatten(),
        }
    }

    fn page_text(&mut self, page_number: u32) -> Option<String> {
        let doc = self.doc.as_ref()?;
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut text = String::new();
            let mut output = pdf_extract::PlainTextOutput::new(&mut text);
            pdf_extract::output_doc_page(doc, &mut output, page_number).map(|()| text)
        }));
        match result {
            Ok(text) => text.ok(),
            Err(_) => {
                self.doc = None;
                None
            }
        }
    }
}

fn lopdf_page_text(doc: &Document, page_number: u32) -> Option<String> {
    panic::catch_unwind(AssertUnwindSafe(|| {
        doc.extract_text_with_limit(&[page_number], MAX_PAGE_CONTENT_BYTES)
            .ok()
    }))
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use lopdf::content::{Content, Operation};
    use lopdf::{Dictionary, Document, Object, Stream, dictionary};

    use crate::extract::{ExtractError, Limits, Segment, extract};

    /// A PDF with one page per entry of `pages`, each showing its strings (already encoded
    /// for `font`) one line apart.
    fn build_pdf(font: Dictionary, pages: &[&[Vec<u8>]]) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(font);
        let resources_id =
            doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
        let mut kids = Vec::new();
        for lines in pages {
            let mut operations = vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 24.into()]),
                Operation::new("TL", vec![30.into()]),
                Operation::new("Td", vec![72.into(), 700.into()]),
            ];
            for line in *lines {
                operations.push(Operation::new(
                    "Tj",
                    vec![Object::String(
                        line.clone(),
                        lopdf::StringFormat::Hexadecimal,
                    )],
                ));
                operations.push(Operation::new("T*", vec![]));
            }
            operations.push(Operation::new("ET", vec![]));
            let content = Content { operations }.encode().expect("encodable content");
            let content_id = doc.add_object(Stream::new(dictionary! {}, content));
            kids.push(Object::from(doc.add_object(dictionary! {
                "Type" => "Page",
                "Parent" => pages_id,
                "Contents" => content_id,
            })));
        }
        let count = i64::try_from(kids.len()).expect("few pages");
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages",
                "Kids" => kids,
                "Count" => count,
                "Resources" => resources_id,
                "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
            }),
        );
        let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog_id);
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).expect("in-memory save");
        bytes
    }

    fn helvetica() -> Dictionary {
        dictionary! {
            "Type" => "Font",
            "Subtype" => "Type1",
            "BaseFont" => "Helvetica",
            "Encoding" => "WinAnsiEncoding",
        }
    }

    /// The standard Adobe-GB1 font every PDF reader has built in, so it is not embedded.
    fn st_song_light() -> Dictionary {
        dictionary! {
            "Type" => "Font",
            "Subtype" => "Type0",
            "BaseFont" => "STSong-Light",
            "Encoding" => "UniGB-UCS2-H",
            "DescendantFonts" => vec![Object::Dictionary(dictionary! {
                "Type" => "Font",
                "Subtype" => "CIDFontType0",
                "BaseFont" => "STSong-Light",
                "CIDSystemInfo" => dictionary! {
                    "Registry" => Object::string_literal("Adobe"),
                    "Ordering" => Object::string_literal("GB1"),
                    "Supplement" => 4,
                },
                "FontDescriptor" => dictionary! {
                    "Type" => "FontDescriptor",
                    "FontName" => "STSong-Light",
                    "Flags" => 6,
                    "FontBBox" => vec![(-25).into(), (-254).into(), 1000.into(), 880.into()],
                    "ItalicAngle" => 0,
                    "Ascent" => 880,
                    "Descent" => -120,
                    "CapHeight" => 880,
                    "StemV" => 93,
                },
                "DW" => 1000,
            })],
        }
    }

    fn ucs2(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    fn pages(bytes: &[u8]) -> Vec<(u32, String)> {
        extract("application/pdf", bytes, &Limits::default())
            .unwrap()
            .into_iter()
            .map(|Segment { at_ms, page, text }| {
                assert_eq!(at_ms, None);
                (page.expect("PDF segments have a page"), text)
            })
            .collect()
    }

    #[test]
    fn latin_pages_are_numbered_from_one() {
        let pdf = build_pdf(
            helvetica(),
            &[
                &[b"Hello PDF world".to_vec(), b"second line".to_vec()],
                &[],
                &[b"Third page".to_vec()],
            ],
        );
        assert_eq!(
            pages(&pdf),
            [
                (1, "Hello PDF world second line".to_owned()),
                (3, "Third page".to_owned())
            ]
        );
    }

    #[test]
    fn non_embedded_cjk_font_falls_back_to_lopdf() {
        // Sanity check that this really is the input `pdf-extract` cannot handle, so the
        // test below exercises the panic path rather than passing by luck.
        let pdf = build_pdf(
            st_song_light(),
            &[&[ucs2("书法入门")], &[ucs2("太极拳"), ucs2("第二行")]],
        );
        let panicked = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(&pdf));
        assert!(
            panicked.is_err(),
            "pdf-extract no longer panics on UniGB-UCS2-H: {panicked:?}"
        );

        let extracted = pages(&pdf);
        assert_eq!(extracted.len(), 2, "{extracted:?}");
        assert_eq!(extracted[0].0, 1);
        assert_eq!(extracted[0].1.replace(' ', ""), "书法入门");
        assert_eq!(extracted[1].0, 2);
        assert_eq!(extracted[1].1.replace(' ', ""), "太极拳第二行");
    }

    #[test]
    fn pdf_extract_is_used_first_and_dropped_after_a_panic() {
        use super::RichExtractor;
        let latin = build_pdf(helvetica(), &[&[b"Hello".to_vec()]]);
        let mut rich = RichExtractor::load(&latin);
        assert_eq!(rich.page_text(1).as_deref().map(str::trim), Some("Hello"));

        let cjk = build_pdf(st_song_light(), &[&[ucs2("书法")], &[ucs2("太极")]]);
        let mut rich = RichExtractor::load(&cjk);
        assert!(rich.doc.is_some());
        assert_eq!(rich.page_text(1), None);
        assert!(
            rich.doc.is_none(),
            "kept using pdf-extract after it panicked"
        );
    }

    #[test]
    fn limits_apply_to_pages() {
        let pdf = build_pdf(
            helvetica(),
            &[
                &[b"alpha".to_vec()],
                &[b"beta".to_vec()],
                &[b"gamma".to_vec()],
            ],
        );
        let limits = Limits {
            max_total_chars: 100,
            max_segments: 2,
        };
        let segments = extract("application/pdf", &pdf, &limits).unwrap();
        assert_eq!(
            segments.iter().map(|s| s.page).collect::<Vec<_>>(),
            [Some(1), Some(2)]
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bytes in [
            &b"%PDF-1.7\n\x00\xFF garbage \x01 trailer << /Root 9 0 R >> %%EOF"[..],
            b"%PDF-1.4\n",
            b"",
            b"not a pdf at all",
        ] {
            match extract("application/pdf", bytes, &Limits::default()) {
                Err(ExtractError::Malformed(_)) => {}
                Ok(segments) => assert!(segments.is_empty(), "{segments:?}"),
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn truncated_file_never_panics() {
        let pdf = build_pdf(helvetica(), &[&[b"Hello".to_vec()], &[b"World".to_vec()]]);
        for cut in (0..pdf.len()).step_by(7) {
            let result = extract("application/pdf", &pdf[..cut], &Limits::default());
            assert!(
                !matches!(result, Err(ExtractError::Panicked(_))),
                "cut at {cut}: {result:?}"
            );
        }
    }
}
