//! The hit count and the facet counts of a search, in one pass over its matches.
//!
//! A common word matches most of a large catalog, and every match is counted into four
//! facets. With tantivy's `FacetCollector` that was a multi-valued column read per facet per
//! match, a quarter of such a search. But a segment holds few distinct combinations of
//! subjects, audiences, kinds and region (call one a *profile*). So each segment gets a table
//! giving every document the number of its profile, built when the segment is committed,
//! before the reload that lets searches see it. A search then counts profiles (one
//! array read per match) and turns the profiles it met into facet counts at the end, in
//! numbers per segment first and strings last. The tables cost 4 bytes a document.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::directory::META_LOCK;
use tantivy::index::SegmentId;
use tantivy::schema::Facet;
use tantivy::{Directory, DocId, Index, Score, Searcher, SegmentOrdinal, SegmentReader};

use super::query::Facets;

/// The facet fields; a slot's dimension is an index into this.
const DIMENSIONS: [&str; 4] = ["subject", "audience", "kind", "region"];
const REGION: usize = 3;
/// Ends one dimension's ordinals in a profile key; no facet has this ordinal.
const END_OF_DIMENSION: u64 = u64::MAX;

/// One combination of facet values, as numbers local to its segment.
#[derive(Debug)]
struct Profile {
    /// The slots it counts in, each once: a slot is one dimension's top-level value.
    slots: Vec<u32>,
    /// Its full region paths (indices into `SegmentProfiles::regions`).
    regions: Vec<u32>,
}

/// A segment's profiles and which one each document has.
#[derive(Debug)]
pub struct SegmentProfiles {
    profile_of: Vec<u32>,
    profiles: Vec<Profile>,
    /// Per slot, its dimension and value as the API writes it (`zhejiang`).
    slots: Vec<(usize, String)>,
    /// The distinct full region paths, for the children of a region being filtered on.
    regions: Vec<Facet>,
}

/// Gives each distinct value a number, in order of first appearance.
struct Numbering<T> {
    numbers: HashMap<T, u32>,
    values: Vec<T>,
}

impl<T: std::hash::Hash + Eq + Clone> Numbering<T> {
    fn new() -> Self {
        Numbering {
            numbers: HashMap::new(),
            values: Vec::new(),
        }
    }

    fn number<Q>(&mut self, value: &Q) -> tantivy::Result<u32>
    where
        T: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = T> + ?Sized,
    {
        if let Some(&number) = self.numbers.get(value) {
            return Ok(number);
        }
        let number = u32::try_from(self.values.len()).map_err(|_| {
            tantivy::TantivyError::InternalError("over 2^32 distinct facet values".into())
        })?;
        self.numbers.insert(value.to_owned(), number);
        self.values.push(value.to_owned());
        Ok(number)
    }
}

impl SegmentProfiles {
    fn build(reader: &SegmentReader) -> tantivy::Result<SegmentProfiles> {
        let readers = DIMENSIONS
            .iter()
            .map(|name| reader.facet_reader(name))
            .collect::<tantivy::Result<Vec<_>>>()?;
        // A profile's key: each dimension's ordinals, each list ended by END_OF_DIMENSION.
        let mut keys: Numbering<Vec<u64>> = Numbering::new();
        let mut profile_of = Vec::with_capacity(reader.max_doc() as usize);
        let mut key = Vec::new();
        for doc in 0..reader.max_doc() {
            key.clear();
            for facet_reader in &readers {
                key.extend(facet_reader.facet_ords(doc));
                key.push(END_OF_DIMENSION);
            }
            profile_of.push(keys.number(key.as_slice())?);
        }
        let mut slots: Numbering<(usize, String)> = Numbering::new();
        let mut regions: Numbering<Facet> = Numbering::new();
        let mut profiles = Vec::with_capacity(keys.values.len());
        for key in &keys.values {
            let mut profile = Profile {
                slots: Vec::new(),
                regions: Vec::new(),
            };
            let groups = key.split(|&ord| ord == END_OF_DIMENSION);
            for (dimension, ords) in groups.take(DIMENSIONS.len()).enumerate() {
                for &ord in ords {
                    let mut facet = Facet::root();
                    readers[dimension].facet_from_ord(ord, &mut facet)?;
                    if let Some(top) = prefix(&facet, 1) {
                        let slot = slots.number(&(dimension, top))?;
                        if !profile.slots.contains(&slot) {
                            profile.slots.push(slot);
                        }
                    }
                    if dimension == REGION {
                        profile.regions.push(regions.number(&facet)?);
                    }
                }
            }
            profiles.push(profile);
        }
        Ok(SegmentProfiles {
            profile_of,
            profiles,
            slots: slots.values,
            regions: regions.values,
        })
    }
}

/// The first `depth` levels of `facet` as the API writes them (`zhejiang/hangzhou`), or
/// `None` when it has fewer.
fn prefix(facet: &Facet, depth: usize) -> Option<String> {
    let path = facet.to_path();
    if facet.is_root() || path.len() < depth {
        return None;
    }
    let cut = Facet::from_path(&path[..depth]);
    Some(cut.to_path_string().trim_start_matches('/').to_owned())
}

/// The profile tables of every searchable segment of one index.
///
/// Not a tantivy `Warmer`, which would do the same on each reload but leaves behind a thread
/// per opened reader that never ends; `OpenIndex::reload` calls `warm` and `keep_only`.
#[derive(Debug, Default)]
pub struct FacetProfiles {
    segments: RwLock<HashMap<SegmentId, Arc<SegmentProfiles>>>,
}

impl FacetProfiles {
    fn for_segment(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentProfiles>> {
        let id = reader.segment_id();
        if let Some(found) = self
            .segments
            .read()
            .expect("the profile lock is never poisoned: nothing panics while holding it")
            .get(&id)
        {
            return Ok(found.clone());
        }
        // A search gets here only when a merge was published between `warm` and the reload,
        // or on a searcher older than the last `keep_only`: the table is built on its thread.
        let built = Arc::new(SegmentProfiles::build(reader)?);
        Ok(self
            .segments
            .write()
            .expect("the profile lock is never poisoned: nothing panics while holding it")
            .entry(id)
            .or_insert(built)
            .clone())
    }

    /// Builds the tables of the committed segments that have none, so that the reload
    /// after a commit publishes its segments with their tables ready.
    pub fn warm(&self, index: &Index) -> tantivy::Result<()> {
        let known: HashSet<SegmentId> = self
            .segments
            .read()
            .expect("the profile lock is never poisoned: nothing panics while holding it")
            .keys()
            .copied()
            .collect();
        let new_segments = {
            // As tantivy's reader does: the lock keeps the clean-up after a background merge
            // from deleting a segment's files between listing and opening them.
            let _meta_lock = index.directory().acquire_lock(&META_LOCK)?;
            index
                .searchable_segments()?
                .iter()
                .filter(|segment| !known.contains(&segment.id()))
                .map(SegmentReader::open)
                .collect::<tantivy::Result<Vec<_>>>()?
        };
        for reader in &new_segments {
            self.for_segment(reader)?;
        }
        Ok(())
    }

    /// Keeps the tables of `searcher`'s segments only (the others were merged away), and
    /// builds any it lacks.
    pub fn keep_only(&self, searcher: &Searcher) -> tantivy::Result<()> {
        for reader in searcher.segment_readers() {
            self.for_segment(reader)?;
        }
        let live: HashSet<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(SegmentReader::segment_id)
            .collect();
        self.segments
            .write()
            .expect("the profile lock is never poisoned: nothing panics while holding it")
            .retain(|id, _| live.contains(id));
        Ok(())
    }
}

/// What a search's `CountAndFacets` found.
#[derive(Debug, Default, PartialEq)]
pub struct Counted {
    pub total: usize,
    pub facets: Facets,
}

/// Counts the matches and their facets: each top-level value of subject, audience, kind and
/// region, and, when a region is filtered on, the regions one level below it.
pub struct CountAndFacets {
    pub profiles: Arc<FacetProfiles>,
    pub selected_region: Option<Facet>,
}

pub struct SegmentCounts {
    table: Arc<SegmentProfiles>,
    counts: Vec<u64>,
}

impl SegmentCollector for SegmentCounts {
    type Fruit = (Arc<SegmentProfiles>, Vec<u64>);

    fn collect(&mut self, doc: DocId, _: Score) {
        self.counts[self.table.profile_of[doc as usize] as usize] += 1;
    }

    fn harvest(self) -> Self::Fruit {
        (self.table, self.counts)
    }
}

impl Collector for CountAndFacets {
    type Fruit = Counted;
    type Child = SegmentCounts;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        let table = self.profiles.for_segment(reader)?;
        let counts = vec![0; table.profiles.len()];
        Ok(SegmentCounts { table, counts })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        segments: Vec<(Arc<SegmentProfiles>, Vec<u64>)>,
    ) -> tantivy::Result<Counted> {
        let mut total = 0u64;
        // Keyed by the tables' own strings: a value is copied once per search, not once per
        // segment it occurs in.
        let mut tallies: [BTreeMap<&str, u64>; 4] = Default::default();
        let mut children: BTreeMap<String, u64> = BTreeMap::new();
        for (table, counts) in &segments {
            // Numbers first (a segment may have thousands of profiles), strings at the end.
            let mut slot_counts = vec![0u64; table.slots.len()];
            // The regions one level below the selected one that this segment's regions lie
            // in, numbered; `child_of` maps each of the segment's regions to its number.
            let mut children_here: Numbering<String> = Numbering::new();
            let child_of = match &self.selected_region {
                Some(selected) => table
                    .regions
                    .iter()
                    .map(|region| {
                        child_below(selected, region)
                            .map(|name| children_here.number(name.as_str()))
                            .transpose()
                    })
                    .collect::<tantivy::Result<Vec<Option<u32>>>>()?,
                None => Vec::new(),
            };
            let mut child_counts = vec![0u64; children_here.values.len()];
            let mut seen: Vec<u32> = Vec::new();
            for (profile, &count) in table.profiles.iter().zip(counts) {
                if count == 0 {
                    continue;
                }
                total += count;
                for &slot in &profile.slots {
                    slot_counts[slot as usize] += count;
                }
                seen.clear();
                for &region in &profile.regions {
                    if let Some(Some(child)) = child_of.get(region as usize)
                        && !seen.contains(child)
                    {
                        seen.push(*child);
                        child_counts[*child as usize] += count;
                    }
                }
            }
            for ((dimension, value), count) in table.slots.iter().zip(slot_counts) {
                if count > 0 {
                    *tallies[*dimension].entry(value.as_str()).or_default() += count;
                }
            }
            for (name, count) in children_here.values.into_iter().zip(child_counts) {
                if count > 0 {
                    *children.entry(name).or_default() += count;
                }
            }
        }
        let owned = |tally: BTreeMap<&str, u64>| -> Vec<(String, u64)> {
            tally
                .into_iter()
                .map(|(value, count)| (value.to_owned(), count))
                .collect()
        };
        let [subject, audience, kind, region] = tallies;
        let mut region = owned(region);
        region.extend(children);
        Ok(Counted {
            total: usize::try_from(total).unwrap_or(usize::MAX),
            facets: Facets {
                subject: owned(subject),
                audience: owned(audience),
                kind: owned(kind),
                region,
            },
        })
    }
}

/// The region one level below `selected` that `region` lies in, if it lies below it.
fn child_below(selected: &Facet, region: &Facet) -> Option<String> {
    if !selected.is_prefix_of(region) {
        return None;
    }
    let depth = if selected.is_root() {
        0
    } else {
        selected.to_path().len()
    };
    prefix(region, depth + 1)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use tantivy::collector::{Count, FacetCollector, MultiCollector};
    use tantivy::query::{AllQuery, Query, TermQuery};
    use tantivy::schema::IndexRecordOption;
    use tantivy::{TantivyDocument, Term};

    use super::*;
    use crate::search::{OpenIndex, create_generation};

    /// tantivy's own collectors on the same search: the counts `CountAndFacets` must equal.
    fn reference(open: &OpenIndex, query: &dyn Query, selected: Option<&Facet>) -> Counted {
        let searcher = open.reader.searcher();
        let mut multi = MultiCollector::new();
        let count = multi.add_collector(Count);
        let handles: Vec<_> = DIMENSIONS
            .iter()
            .map(|name| {
                let mut collector = FacetCollector::for_field(*name);
                collector.add_facet(Facet::root());
                multi.add_collector(collector)
            })
            .collect();
        let children = selected.map(|facet| {
            let mut collector = FacetCollector::for_field("region");
            collector.add_facet(facet.clone());
            multi.add_collector(collector)
        });
        let mut fruits = searcher.search(query, &multi).unwrap();
        let as_list = |counts: tantivy::collector::FacetCounts, under: &Facet| {
            counts
                .get(under.clone())
                .map(|(f, n)| (f.to_path_string().trim_start_matches('/').to_owned(), n))
                .collect::<Vec<_>>()
        };
        let mut lists: Vec<Vec<(String, u64)>> = handles
            .into_iter()
            .map(|handle| as_list(handle.extract(&mut fruits), &Facet::root()))
            .collect();
        if let (Some(handle), Some(facet)) = (children, selected) {
            lists[REGION].extend(as_list(handle.extract(&mut fruits), facet));
        }
        let [subject, audience, kind, region]: [Vec<(String, u64)>; 4] = lists.try_into().unwrap();
        Counted {
            total: count.extract(&mut fruits),
            facets: Facets {
                subject,
                audience,
                kind,
                region,
            },
        }
    }

    fn ours(open: &OpenIndex, query: &dyn Query, selected: Option<&Facet>) -> Counted {
        let counter = CountAndFacets {
            profiles: open.facet_profiles.clone(),
            selected_region: selected.cloned(),
        };
        open.reader.searcher().search(query, &counter).unwrap()
    }

    #[test]
    fn one_pass_counts_equal_tantivys_facet_collectors_across_segments_and_deletes() {
        let root = tempfile::tempdir().unwrap();
        let open = create_generation(root.path(), "gen-test").unwrap();
        let fields = open.fields;
        let mut writer: tantivy::IndexWriter = open.index.writer(15_000_000).unwrap();
        let regions = [
            "/zhejiang/hangzhou/xihu",
            "/zhejiang/ningbo",
            "/zhejiang",
            "/jiangsu/nanjing",
            "",
        ];
        let subjects = ["health", "arts", "digital_skills"];
        // Three commits, so three segments, the later ones opened after the first warm.
        for batch in 0..3 {
            for n in 0..200u32 {
                let mut doc = TantivyDocument::default();
                doc.add_text(fields.doc_kind, "course");
                doc.add_text(fields.course_id, format!("c{batch}-{n}"));
                for (i, subject) in subjects.iter().enumerate() {
                    if (n as usize + i + batch).is_multiple_of(i + 2) {
                        doc.add_facet(fields.subject, Facet::from_path([*subject]));
                    }
                }
                doc.add_facet(
                    fields.audience,
                    Facet::from_path([["seniors", "children"][n as usize % 2]]),
                );
                if n.is_multiple_of(3) {
                    doc.add_facet(fields.kind, Facet::from_path(["video"]));
                    doc.add_facet(fields.kind, Facet::from_path(["subtitle"]));
                }
                let region = regions[(n as usize + batch) % regions.len()];
                if !region.is_empty() {
                    doc.add_facet(fields.region, Facet::from(region));
                }
                writer.add_document(doc).unwrap();
            }
            if batch == 2 {
                writer.delete_term(Term::from_field_text(fields.course_id, "c0-7"));
            }
            writer.commit().unwrap();
            open.facet_profiles.warm(&open.index).unwrap();
            assert_eq!(tables(&open), committed_segments(&open));
            open.reload().unwrap();
            // Warmed before the reload published them: no search has to build a table.
            assert_eq!(tables(&open), live_segments(&open));
        }
        assert!(open.reader.searcher().segment_readers().len() > 1);

        let arts = TermQuery::new(
            Term::from_facet(fields.subject, &Facet::from_path(["arts"])),
            IndexRecordOption::Basic,
        );
        let zhejiang = Facet::from("/zhejiang");
        let nanjing = Facet::from("/jiangsu/nanjing");
        for (query, selected) in [
            (&AllQuery as &dyn Query, None),
            (&AllQuery as &dyn Query, Some(&zhejiang)),
            (&AllQuery as &dyn Query, Some(&nanjing)),
            (&arts as &dyn Query, Some(&zhejiang)),
            (&arts as &dyn Query, None),
        ] {
            let (expected, got) = (
                reference(&open, query, selected),
                ours(&open, query, selected),
            );
            assert_eq!(expected, got);
            assert!(got.total > 0 && !got.facets.region.is_empty());
        }
        assert_eq!(ours(&open, &AllQuery, None).total, 599);

        // A merge replaces the segments; the reload drops their tables.
        let ids = open
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect::<Vec<_>>();
        writer.merge(&ids).wait().unwrap();
        writer.commit().unwrap();
        open.reload().unwrap();
        assert_eq!(open.reader.searcher().segment_readers().len(), 1);
        assert_eq!(tables(&open), live_segments(&open));
        let counted = ours(&open, &AllQuery, Some(&zhejiang));
        assert_eq!(reference(&open, &AllQuery, Some(&zhejiang)), counted);
    }

    fn tables(open: &OpenIndex) -> HashSet<SegmentId> {
        open.facet_profiles
            .segments
            .read()
            .unwrap()
            .keys()
            .copied()
            .collect()
    }

    fn committed_segments(open: &OpenIndex) -> HashSet<SegmentId> {
        let segments = open.index.searchable_segment_ids().unwrap();
        segments.into_iter().collect()
    }

    fn live_segments(open: &OpenIndex) -> HashSet<SegmentId> {
        let searcher = open.reader.searcher();
        searcher
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect()
    }

    #[test]
    fn children_are_the_next_level_below_the_selected_region_only() {
        let zhejiang = Facet::from("/zhejiang");
        let regions = [
            Facet::from("/zhejiang/hangzhou/xihu"),
            Facet::from("/zhejiang/hangzhou"),
            Facet::from("/zhejiang"),
            Facet::from("/zhejiangxi/a"),
            Facet::from("/jiangsu/nanjing"),
        ];
        let children: BTreeSet<String> = regions
            .iter()
            .filter_map(|region| child_below(&zhejiang, region))
            .collect();
        assert_eq!(Vec::from_iter(children), ["zhejiang/hangzhou"]);
    }

    #[test]
    fn a_prefix_needs_that_many_levels() {
        let facet = Facet::from("/zhejiang/hangzhou");
        assert_eq!(prefix(&facet, 1).as_deref(), Some("zhejiang"));
        assert_eq!(prefix(&facet, 2).as_deref(), Some("zhejiang/hangzhou"));
        assert_eq!(prefix(&facet, 3), None);
        assert_eq!(prefix(&Facet::root(), 1), None);
    }
}
