//! nDCG@k with graded gains: DCG = Σ gain(rank i) / log2(i + 1) over the first k results, divided
//! by the DCG of the ideal order of every judged document of the query. An unjudged document
//! gains 0 (it counts as not relevant, the usual convention for pooled judgements).

use std::collections::HashMap;

/// The nDCG at `depth` of `ranked` (document numbers, best first) against `judged` (document →
/// grade). `None` when no judged document has a grade above 0: such a query has no ideal
/// ranking to compare with, so it is left out rather than scored 0 or 1.
pub fn ndcg(ranked: &[usize], judged: &HashMap<usize, u32>, depth: usize) -> Option<f64> {
    let mut ideal: Vec<u32> = judged.values().copied().filter(|&g| g > 0).collect();
    if ideal.is_empty() {
        return None;
    }
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let gains: Vec<u32> = ranked
        .iter()
        .map(|doc| judged.get(doc).copied().unwrap_or(0))
        .collect();
    Some(dcg(&gains, depth) / dcg(&ideal, depth))
}

fn dcg(gains: &[u32], depth: usize) -> f64 {
    gains
        .iter()
        .take(depth)
        .enumerate()
        .map(|(i, &gain)| f64::from(gain) / (i as f64 + 2.0).log2())
        .sum()
}

/// Known answers, checked at every start: the bench runs without the libtest harness, so a
/// `#[test]` here would never run.
pub fn check() {
    let judged: HashMap<usize, u32> = [(1, 2), (2, 1), (3, 0)].into_iter().collect();
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
    // The ideal order scores 1, whatever unjudged documents follow it.
    assert!(close(ndcg(&[1, 2, 7, 8], &judged, 10), 1.0));
    // (2/log2 3 + 1/log2 4) / (2/log2 2 + 1/log2 3): grade 2 at rank 2, grade 1 at rank 3.
    let expected = (2.0 / 3f64.log2() + 0.5) / (2.0 + 1.0 / 3f64.log2());
    assert!(close(ndcg(&[3, 1, 2], &judged, 10), expected));
    // Nothing relevant retrieved scores 0; a relevant document below the cut-off counts nothing.
    assert!(close(ndcg(&[3, 9], &judged, 10), 0.0));
    assert!(close(ndcg(&[9, 1], &judged, 1), 0.0));
    // The ideal DCG is cut at the same depth: with depth 1 only the best grade counts.
    assert!(close(ndcg(&[1], &judged, 1), 1.0));
    // No positive judgement: not scored.
    let unjudgeable: HashMap<usize, u32> = [(1, 0)].into_iter().collect();
    assert_eq!(ndcg(&[1], &unjudgeable, 10), None);
}
