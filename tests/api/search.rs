//! Search over HTTP: analysis (Chinese, English, pinyin), filters, facets, snippets, and the
//! index following the catalog.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

fn ids(results: &Value) -> Vec<String> {
    results["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect()
}

fn titles(results: &Value) -> Vec<String> {
    results["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap().to_owned())
        .collect()
}

struct Catalog {
    staff: String,
    admin: String,
}

async fn create(app: &TestApp, token: &str, institution: &str, body: Value) -> String {
    let mut body = body;
    body["institution"] = json!(institution);
    let response = app
        .post_json_with_token("/api/v1/courses", token, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Two institutions in two regions, a staff member of the first.
async fn catalog(app: &TestApp) -> Catalog {
    let (staff, _) = app.course_with_staff().await; // xihu-college, zhejiang/hangzhou/xihu, 太极拳 course
    let admin = app.login("admin@example.org").await;
    app.institution(&admin, "ningbo-library", "zhejiang/ningbo")
        .await;
    app.institution(&admin, "suzhou-museum", "jiangsu/suzhou")
        .await;
    Catalog { staff, admin }
}

#[tokio::test]
async fn chinese_english_and_pinyin_queries_find_their_courses() {
    let app = TestApp::spawn().await;
    let c = catalog(&app).await;
    let shufa = create(
        &app,
        &c.staff,
        "xihu-college",
        json!({"title": "书法入门：永字八法", "subjects": ["humanities_arts"], "tags": ["楷书"]}),
    )
    .await;
    let homophone = create(
        &app,
        &c.staff,
        "xihu-college",
        json!({"title": "舒发情绪的小方法", "subjects": ["health"]}),
    )
    .await;
    let garden = create(&app, &c.admin, "ningbo-library", json!({"title": "Gardening on the balcony", "description": "Growing vegetables in small gardens", "subjects": ["life_leisure"], "languages": ["en"]})).await;
    app.wait_for_index().await;

    let taiji = app.search("q=太极拳").await;
    assert_eq!(titles(&taiji)[0], "太极拳入门 Tai chi for beginners");
    assert!(
        taiji["hits"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("<mark>"),
        "{taiji}"
    );
    assert_eq!(
        titles(&app.search("q=taijiquan").await)[0],
        "太极拳入门 Tai chi for beginners"
    );
    assert_eq!(
        titles(&app.search("q=tai%20ji%20quan").await)[0],
        "太极拳入门 Tai chi for beginners"
    );
    assert_eq!(
        titles(&app.search("q=tjq").await)[0],
        "太极拳入门 Tai chi for beginners"
    );

    let by_hanzi = app.search("q=书法").await;
    assert_eq!(
        ids(&by_hanzi),
        vec![shufa.clone()],
        "a homophone never matches the characters"
    );
    let by_pinyin = app.search("q=shufa").await;
    assert!(ids(&by_pinyin).contains(&shufa), "{by_pinyin}");
    let _ = homophone;

    assert_eq!(
        ids(&app.search("q=gardens").await)[0],
        garden,
        "English is stemmed"
    );
    assert_eq!(ids(&app.search("q=vegetable").await)[0], garden);
    assert_eq!(
        ids(&app.search("q=balcny%20gardning").await)[0],
        garden,
        "typos in long words are tolerated"
    );
    assert_eq!(
        ids(&app.search("q=%22small%20gardens%22").await),
        vec![garden.clone()],
        "quoted phrase"
    );
    assert_eq!(
        app.search("q=%22gardens%20small%22").await["total"],
        0,
        "phrase order matters"
    );
}

#[tokio::test]
async fn filters_and_facets() {
    let app = TestApp::spawn().await;
    let c = catalog(&app).await;
    create(&app, &c.admin, "ningbo-library", json!({"title": "Reading club 读书会", "subjects": ["humanities_arts"], "audience": ["adults"]})).await;
    create(&app, &c.admin, "suzhou-museum", json!({"title": "Museum reading 博物馆读书", "subjects": ["humanities_arts"], "audience": ["children"], "languages": ["zh"]})).await;
    app.wait_for_index().await;

    let all = app.search("q=").await;
    assert_eq!(all["total"], 3, "an empty query browses everything");
    assert_eq!(all["facets"]["subject"]["humanities_arts"], 2);
    assert_eq!(all["facets"]["subject"]["fitness"], 1);
    assert_eq!(all["facets"]["region"]["zhejiang"], 2);
    assert_eq!(all["facets"]["region"]["jiangsu"], 1);

    let zhejiang = app.search("region=zhejiang").await;
    assert_eq!(
        zhejiang["total"], 2,
        "a region includes what lies beneath it"
    );
    assert_eq!(zhejiang["facets"]["region"]["zhejiang/hangzhou"], 1);
    assert_eq!(zhejiang["facets"]["region"]["zhejiang/ningbo"], 1);
    assert_eq!(app.search("region=zhejiang/ningbo").await["total"], 1);
    assert_eq!(
        app.search("q=reading&subject=humanities_arts&audience=children")
            .await["total"],
        1
    );
    assert_eq!(app.search("institution=suzhou-museum").await["total"], 1);
    assert_eq!(app.search("language=zh").await["total"], 2);
    assert_eq!(
        app.search("subject=cooking").await["total"],
        0,
        "unknown values: empty, not an error"
    );
    assert_eq!(app.search("region=atlantis").await["total"], 0);

    // Filters only filter: a hit scores the same with them as without.
    let score = |results: &Value| results["hits"][0]["score"].as_f64().unwrap();
    let museum = app.search("q=museum").await;
    let filtered = app
        .search("q=museum&language=zh&subject=humanities_arts&region=jiangsu")
        .await;
    assert_eq!(filtered["total"], 1);
    assert_eq!(titles(&filtered), titles(&museum)[..1]);
    assert_eq!(score(&filtered), score(&museum));
}

#[tokio::test]
async fn withdrawn_and_edited_courses_follow_the_catalog() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    app.wait_for_index().await;
    assert_eq!(app.search("q=太极拳").await["total"], 1);

    let patched = app
        .patch_json_with_token(
            &format!("/api/v1/courses/{course_id}"),
            &staff,
            &json!({"title": "八段锦 Baduanjin qigong"}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    app.wait_for_index().await;
    assert_eq!(app.search("q=太极拳").await["total"], 0);
    assert_eq!(app.search("q=八段锦").await["total"], 1);

    app.client
        .delete(app.url(&format!("/api/v1/courses/{course_id}")))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    app.wait_for_index().await;
    assert_eq!(
        app.search("q=八段锦").await["total"],
        0,
        "a withdrawn course is never shown"
    );
    assert_eq!(app.search("q=").await["total"], 0);
}

#[tokio::test]
async fn hostile_and_odd_queries_get_answers_not_errors() {
    let app = TestApp::spawn().await;
    app.course_with_staff().await;
    app.wait_for_index().await;

    for q in [
        "title:太极",
        "tai^2 chi~",
        "(((",
        "\"unbalanced",
        "a AND OR NOT",
        "*",
        "-",
        "%3Cscript%3E",
    ] {
        let response = app.get(&format!("/api/v1/search?q={q}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{q}");
    }
    let long = "taiji ".repeat(2000);
    assert_eq!(
        app.get(&format!("/api/v1/search?q={long}")).await.status(),
        StatusCode::OK
    );
    let clamped = app.search("limit=100000").await;
    assert!(clamped["hits"].as_array().unwrap().len() <= 100);
    assert_eq!(app.search("offset=500").await["hits"], json!([]));
    assert_problem(
        app.get("/api/v1/search?sort=bogus").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_problem(
        app.get("/api/v1/search?offset=99999").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_problem(
        app.get("/api/v1/search?limit=-1").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let escaped = app.search("q=%3Cb%3E%E5%A4%AA%E6%9E%81").await;
    assert!(
        !escaped["hits"][0]["snippet"]
            .as_str()
            .unwrap_or("")
            .contains("<b>")
    );
}

#[tokio::test]
async fn newest_first_sorting() {
    let app = TestApp::spawn().await;
    let c = catalog(&app).await;
    let later = create(
        &app,
        &c.staff,
        "xihu-college",
        json!({"title": "太极拳进阶 Advanced tai chi"}),
    )
    .await;
    app.wait_for_index().await;

    let newest = app.search("q=太极拳&sort=newest").await;
    assert_eq!(ids(&newest)[0], later);
    assert_eq!(
        ids(&app.search("q=").await)[0],
        later,
        "browsing is newest first"
    );
}

/// A two-page PDF in Helvetica, built the way any PDF writer would.
fn two_page_pdf(page_one: &str, page_two: &str) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};

    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids = Vec::new();
    for text in [page_one, page_two] {
        let content = Content {
            operations: vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 18.into()]),
                Operation::new("Td", vec![72.into(), 700.into()]),
                Operation::new("Tj", vec![Object::string_literal(text)]),
                Operation::new("ET", vec![]),
            ],
        };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        kids.push(Object::from(doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        })));
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => 2, "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

#[tokio::test]
async fn search_reaches_inside_subtitles_and_pdf_pages() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let srt = "1\n00:00:01,000 --> 00:00:04,000\n起势，双脚与肩同宽\n\n2\n00:01:15,500 --> 00:01:18,000\n揽雀尾，注意呼吸\n";
    let subtitle: Value = app
        .put_file(&staff, &course_id, "lesson.zh.srt", srt.as_bytes().to_vec())
        .await
        .json()
        .await
        .unwrap();
    let pdf = two_page_pdf(
        "Warm up your shoulders gently",
        "Breathing exercises for the heart",
    );
    let document = app.put_file(&staff, &course_id, "handout.pdf", pdf).await;
    assert_eq!(document.status(), StatusCode::CREATED);
    let document: Value = document.json().await.unwrap();
    app.wait_for_extraction().await;
    app.wait_for_index().await;

    let cue = app.search("q=揽雀尾").await;
    assert_eq!(ids(&cue), vec![course_id.clone()], "{cue}");
    let matches = cue["hits"][0]["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{cue}");
    assert_eq!(matches[0]["file_id"], subtitle["id"]);
    assert_eq!(matches[0]["at_seconds"], 75.5);
    assert!(matches[0]["text"].as_str().unwrap().contains("揽雀尾"));

    let page = app.search("q=breathing").await;
    assert_eq!(ids(&page), vec![course_id.clone()], "{page}");
    let matches = page["hits"][0]["matches"].as_array().unwrap();
    assert_eq!(matches[0]["file_id"], document["id"]);
    assert_eq!(matches[0]["page"], 2, "pages count from 1");
    assert!(
        page["hits"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("<mark>"),
        "{page}"
    );

    let video_kind = app.search("kind=document").await;
    assert_eq!(video_kind["total"], 1);

    // Many at once: while more searches are in flight than there are search threads, each
    // collects its segments on its own thread. The answers are those given one at a time,
    // in-media matches and snippets included.
    let queries = ["q=揽雀尾", "q=breathing", "q=起势", "kind=document"];
    let mut one_at_a_time = Vec::new();
    for query in queries {
        one_at_a_time.push(app.search(query).await);
    }
    let together =
        futures::future::join_all((0..24).map(|i| app.search(queries[i % queries.len()]))).await;
    for (i, answer) in together.iter().enumerate() {
        let query = queries[i % queries.len()];
        assert_eq!(answer, &one_at_a_time[i % queries.len()], "{query}");
    }
}

/// A course with one long subtitle file: `cues` cues of `filler`, the last one `special`.
/// Returns the snippet of the only hit for `query`, which must be that course.
async fn snippet_in_long_subtitles(cues: u32, filler: &str, special: &str, query: &str) -> String {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let mut srt = String::new();
    for i in 1..=cues {
        let text = if i == cues { special } else { filler };
        let (minute, second) = (i * 3 / 60, i * 3 % 60);
        srt.push_str(&format!(
            "{i}\n00:{minute:02}:{second:02},000 --> 00:{minute:02}:{second:02},500\n{text}\n\n"
        ));
    }
    let subtitle = app
        .put_file(&staff, &course_id, "long.srt", srt.into_bytes())
        .await;
    assert_eq!(subtitle.status(), StatusCode::CREATED);
    app.wait_for_extraction().await;
    app.wait_for_index().await;
    let found = app.search(&format!("q={query}")).await;
    assert_eq!(ids(&found), vec![course_id], "{found}");
    found["hits"][0]["snippet"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_word_deep_in_long_subtitles_is_highlighted_in_the_snippet() {
    // 500 cues (~24 KB of text); the word searched for is only in the last.
    let snippet = snippet_in_long_subtitles(
        500,
        "双脚与肩同宽，放松肩膀，呼吸自然",
        "接下来练习揽雀尾，动作要慢",
        "揽雀尾",
    )
    .await;
    assert!(snippet.contains("<mark>揽雀尾</mark>"), "{snippet}");
    assert!(snippet.chars().count() < 400, "{snippet}");
}

#[tokio::test]
async fn a_word_inside_other_words_first_is_still_found_in_long_subtitles() {
    // "art" is inside "started" 400 times before the cue where it is a word of its own.
    let snippet = snippet_in_long_subtitles(
        401,
        "We started again, slowly",
        "Folk art of the village",
        "art",
    )
    .await;
    assert!(snippet.contains("Folk <mark>art</mark>"), "{snippet}");
}

#[tokio::test]
async fn snippets_come_from_where_the_words_are() {
    let app = TestApp::spawn().await;
    let c = catalog(&app).await;
    // A description of ~2.5 KB whose only form of "make" is "Making", near its end.
    let description = format!(
        "{}Making green tea by hand takes patience.",
        "Leaves are picked in spring and dried in the shade. ".repeat(50)
    );
    create(&app, &c.staff, "xihu-college", json!({"title": "Tea from the hills", "description": description, "subjects": ["life_leisure"]})).await;
    // The word only in the title: the description holds none of it.
    create(&app, &c.staff, "xihu-college", json!({"title": "Pottery for beginners", "description": "Clay, wheels and glazes.", "subjects": ["humanities_arts"]})).await;
    // A short description whose word does not start with its stem (`flexibl`).
    create(&app, &c.staff, "xihu-college", json!({"title": "Morning stretches", "description": "Ten minutes a day for flexibility.", "subjects": ["fitness"]})).await;
    app.wait_for_index().await;

    let tea = app.search("q=make").await;
    assert_eq!(titles(&tea), vec!["Tea from the hills"], "{tea}");
    let snippet = tea["hits"][0]["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("<mark>Making</mark> green tea"),
        "{snippet}"
    );

    let stretches = app.search("q=flexible").await;
    assert_eq!(titles(&stretches), vec!["Morning stretches"], "{stretches}");
    assert_eq!(
        stretches["hits"][0]["snippet"], "Ten minutes a day for <mark>flexibility</mark>",
        "{stretches}"
    );

    let pottery = app.search("q=pottery").await;
    assert_eq!(
        pottery["hits"][0]["snippet"], "<mark>Pottery</mark> for beginners",
        "{pottery}"
    );
}

#[tokio::test]
async fn a_file_whose_text_cannot_be_extracted_is_still_served_and_counted() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let mut broken = b"%PDF-1.4\n".to_vec();
    broken.extend(std::iter::repeat_n(b'#', 5000));
    let file: Value = app
        .put_file(&staff, &course_id, "broken.pdf", broken.clone())
        .await
        .json()
        .await
        .unwrap();
    app.wait_for_extraction().await;
    app.wait_for_index().await;

    assert_eq!(
        app.get(file["url"].as_str().unwrap())
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        broken.as_slice()
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("shuyuan_text_extraction_failures_total 1"),
        "{metrics}"
    );
    assert_eq!(
        app.search("q=太极拳").await["total"],
        1,
        "the course is still indexed"
    );
}

#[tokio::test]
async fn documents_without_an_extractor_get_no_text_and_count_no_failure() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let mut docx = b"PK\x03\x04".to_vec();
    docx.extend(std::iter::repeat_n(0u8, 200));
    let uploaded = app.put_file(&staff, &course_id, "notes.docx", docx).await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    app.wait_for_extraction().await;

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("shuyuan_text_extraction_failures_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn highlighting_a_word_at_the_very_end_of_a_title_never_fails() {
    let app = TestApp::spawn().await;
    let c = catalog(&app).await;
    for title in [
        "口腔内有白色的皮，不痛",
        "月经前白带有血丝，有褐色分泌物 白带有血丝褐色分泌",
        "产后拉屎肚子",
    ] {
        create(&app, &c.staff, "xihu-college", json!({"title": title})).await;
    }
    app.wait_for_index().await;

    for q in ["不痛不痒", "分泌物", "肚子疼", "不痛", "肚子"] {
        let results = app.search(&format!("q={q}")).await;
        for hit in results["hits"].as_array().unwrap() {
            assert!(!hit["snippet"].as_str().unwrap().is_empty(), "{q}: {hit}");
        }
    }
}
