//! The soak's stream of files and what each one must end as: good files (some with rows to
//! quarantine, some with a key written twice), files to reject, new versions of a key
//! written through a rename, in place with the same size and modification time, the same
//! bytes again, and a key's earlier bytes again. Every content is remembered, so the end
//! state can be computed without penstock: which versions exist, their status and counts,
//! and the table (an independent parse of each version, later lineage winning).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::FileExt;
use std::path::Path;

use penstock_tests::drop_into;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use rand::Rng;
use sha2::{Digest, Sha256};

const STATES: [&str; 5] = ["TX", "CA", "NC", "AK", "PR"];

/// How one good content is generated: the same shape with another seed has the same length.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// The key's number (its rows' plant names carry it, so keys of different files differ).
    n: u32,
    /// The first record's index: versions of one key overlap in part.
    offset: u32,
    records: u32,
    /// Every this-many-th record cannot be loaded (quarantined).
    bad_every: Option<u32>,
    seed: u64,
}

#[derive(Clone, Debug)]
pub struct Content {
    pub bytes: Vec<u8>,
    /// The version id penstock gives these bytes in a folder.
    pub sha: String,
    /// None: the file must be rejected.
    pub good: Option<Good>,
}

#[derive(Clone, Debug)]
pub struct Good {
    pub records: i64,
    /// Plant names of the rows that must be quarantined (unique to this content).
    pub bad: BTreeSet<String>,
    shape: Shape,
}

impl Content {
    fn new(bytes: Vec<u8>, good: Option<Good>) -> Content {
        let sha = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        Content { bytes, sha, good }
    }

    pub fn status(&self) -> &'static str {
        match &self.good {
            None => "rejected",
            Some(g) if g.bad.is_empty() => "done",
            Some(_) => "done_with_errors",
        }
    }
}

fn good(shape: Shape) -> Content {
    let mut owned = Vec::new();
    let mut bad = BTreeSet::new();
    for i in 0..shape.records {
        let idx = shape.offset + i;
        let (mut plant, mut generator) = (format!("Soak {}, Plant {}", shape.n, idx / 3), format!("G{}", idx % 3));
        if i % 50 == 49 {
            // The previous record's key again: the later line wins, the earlier is superseded.
            (plant, generator) = (
                format!("Soak {}, Plant {}", shape.n, (idx - 1) / 3),
                format!("G{}", (idx - 1) % 3),
            );
        }
        let d = shape
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add((idx as u64).wrapping_mul(1442695040888963407))
            >> 33;
        // The pattern depends on the index only and each has a fixed width, so a new seed
        // gives bytes of the same length (the in-place rewrite needs that).
        let mut mwh = match idx % 4 {
            0 => String::new(),
            1 => format!("{},{:03}", 1 + d % 9, d % 1000),
            2 => format!(" ({},{:03})", 1 + d % 9, d % 1000),
            _ => format!("{}.{}", 100 + d % 900, d % 10),
        };
        if shape.bad_every.is_some_and(|b| i % b == b - 1) {
            plant = format!("Soak {} Bad {:06}-{i}", shape.n, shape.seed % 1_000_000);
            mwh = "n/a".into();
            bad.insert(plant.clone());
        }
        owned.push((STATES[(idx % 5) as usize], plant, generator, mwh));
    }
    let rows: Vec<egrid::Gen<'_>> = owned
        .iter()
        .map(|(s, p, g, m)| (2023, *s, p.as_str(), g.as_str(), m.as_str()))
        .collect();
    let bytes = egrid::file(&rows, &STANDARD_ORDER, "\r\n");
    let records = shape.records as i64;
    Content::new(bytes, Some(Good { records, bad, shape }))
}

/// A file penstock must reject: its header lacks a column the spec maps, or it is empty.
fn rejected(rng: &mut impl Rng, n: u32) -> Content {
    if rng.random_bool(0.2) {
        return Content::new(Vec::new(), None);
    }
    let plant = format!("Soak {n}, Never loaded");
    let rows = [(2023, "TX", plant.as_str(), "G1", "12")];
    let order = ["SEQGEN23", "YEAR", "PSTATEABB", "PNAME", "GENNTAN"];
    Content::new(egrid::file(&rows, &order, "\n"), None)
}

/// What was done to the store (counted for the summary).
#[derive(Debug, Default)]
pub struct Drops {
    pub new_good: u32,
    pub new_rejected: u32,
    pub rewritten: u32,
    pub in_place: u32,
    pub same_bytes: u32,
    pub reverted: u32,
}

/// Every key written and the contents it held, in order.
#[derive(Default)]
pub struct Store {
    pub keys: BTreeMap<String, Vec<Content>>,
    next: u32,
    pub drops: Drops,
}

impl Store {
    /// Writes the next file into `root`. `settled(key, n, sha)` tells whether the key's `n`-th
    /// version exists, holds `sha` and is terminal: a key is only written again once its
    /// latest bytes are, so the order of its versions is the order of the writes.
    pub fn drop_next(&mut self, root: &Path, rng: &mut impl Rng, settled: impl Fn(&str, usize, &str) -> bool) {
        let ready: Vec<String> = self
            .versions()
            .into_iter()
            .filter(|(key, versions)| settled(key, versions.len(), &versions.last().unwrap().sha))
            .map(|(key, _)| key.to_string())
            .collect();
        let roll = rng.random_range(0..100);
        if ready.is_empty() || roll < 45 {
            return self.new_file(root, rng, true);
        }
        if roll < 55 {
            return self.new_file(root, rng, false);
        }
        let key = ready[rng.random_range(0..ready.len())].clone();
        let history = &self.keys[&key];
        let last = history.last().unwrap().clone();
        let earlier = history.iter().rev().find(|c| c.sha != last.sha).cloned();
        match (roll, &last.good, earlier) {
            (55..75, _, _) => {
                let n = key_number(&key);
                let content = good(random_shape(rng, n));
                drop_into(root, &key, &content.bytes);
                self.drops.rewritten += 1;
                self.push(key, content);
            }
            (75..85, Some(g), _) if !last.bytes.is_empty() => {
                let shape = Shape {
                    seed: rng.random(),
                    ..g.shape
                };
                let content = good(shape);
                assert_eq!(content.bytes.len(), last.bytes.len());
                write_in_place_keeping_mtime(root, &key, &content.bytes);
                self.drops.in_place += 1;
                self.push(key, content);
            }
            (85..93, _, _) => {
                drop_into(root, &key, &last.bytes);
                self.drops.same_bytes += 1;
                self.push(key, last);
            }
            (_, _, Some(earlier)) => {
                drop_into(root, &key, &earlier.bytes);
                self.drops.reverted += 1;
                self.push(key, earlier);
            }
            _ => self.new_file(root, rng, true),
        }
    }

    /// A new good file of `records` records (a backlog of chunk items to purge).
    pub fn drop_big(&mut self, root: &Path, rng: &mut impl Rng, records: u32) {
        self.next += 1;
        let n = self.next;
        let key = format!("egrid/generators/soak-{n}.csv");
        let content = good(Shape {
            records,
            ..random_shape(rng, n)
        });
        drop_into(root, &key, &content.bytes);
        self.drops.new_good += 1;
        self.push(key, content);
    }

    fn new_file(&mut self, root: &Path, rng: &mut impl Rng, is_good: bool) {
        self.next += 1;
        let n = self.next;
        let key = format!("egrid/generators/soak-{n}.csv");
        let content = if is_good {
            self.drops.new_good += 1;
            good(random_shape(rng, n))
        } else {
            self.drops.new_rejected += 1;
            rejected(rng, n)
        };
        drop_into(root, &key, &content.bytes);
        self.push(key, content);
    }

    fn push(&mut self, key: String, content: Content) {
        self.keys.entry(key).or_default().push(content);
    }

    /// The versions each key must have, in order: its contents with consecutive equal bytes
    /// taken as one (the same bytes again are no new version).
    pub fn versions(&self) -> BTreeMap<&str, Vec<&Content>> {
        self.keys
            .iter()
            .map(|(key, history)| {
                let mut versions: Vec<&Content> = Vec::new();
                for content in history {
                    if versions.last().is_none_or(|v| v.sha != content.sha) {
                        versions.push(content);
                    }
                }
                (key.as_str(), versions)
            })
            .collect()
    }
}

fn random_shape(rng: &mut impl Rng, n: u32) -> Shape {
    Shape {
        n,
        offset: rng.random_range(0..2_000),
        records: rng.random_range(500..6_000),
        bad_every: rng.random_bool(0.5).then(|| rng.random_range(40..400)),
        seed: rng.random(),
    }
}

fn key_number(key: &str) -> u32 {
    key.trim_start_matches("egrid/generators/soak-")
        .trim_end_matches(".csv")
        .parse()
        .unwrap()
}

/// What the table must hold once every version in `loaded` (file id, content) is loaded,
/// by an independent parse of each: later lineage wins, quarantined rows are absent.
pub fn expected_table(loaded: &[(i64, &Content)]) -> egrid::Table {
    let mut table = egrid::Table::new();
    let mut loaded = loaded.to_vec();
    loaded.sort_by_key(|(id, _)| *id);
    for (id, content) in loaded {
        let good = content.good.as_ref().expect("only good versions load");
        for (key, row) in egrid::expected(&content.bytes, id) {
            if !good.bad.contains(&key.2) {
                table.insert(key, row);
            }
        }
    }
    table
}

/// `cp -p` or `rsync -a --inplace`: the same inode rewritten with bytes of the same length,
/// its modification time put back.
fn write_in_place_keeping_mtime(root: &Path, key: &str, bytes: &[u8]) {
    let path = root.join(key);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let mtime = file.metadata().unwrap().modified().unwrap();
    file.write_all_at(bytes, 0).unwrap();
    file.set_modified(mtime).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_with_another_seed_has_the_same_length_and_other_bytes() {
        let shape = Shape {
            n: 3,
            offset: 17,
            records: 900,
            bad_every: Some(41),
            seed: 1,
        };
        let (a, b) = (good(shape), good(Shape { seed: 2, ..shape }));
        assert_eq!(a.bytes.len(), b.bytes.len());
        assert_ne!(a.sha, b.sha);
        assert_eq!(a.good.unwrap().bad.len(), 900 / 41);
    }

    #[test]
    fn the_same_bytes_again_are_no_new_version() {
        let mut store = Store::default();
        let one = good(Shape {
            n: 1,
            offset: 0,
            records: 10,
            bad_every: None,
            seed: 5,
        });
        let two = rejected(&mut rand::rng(), 1);
        for c in [&one, &one, &two, &one] {
            store.push("k".into(), c.clone());
        }
        let shas: Vec<&str> = store.versions()["k"].iter().map(|c| c.sha.as_str()).collect();
        assert_eq!(shas, [one.sha.as_str(), two.sha.as_str(), one.sha.as_str()]);
    }
}
