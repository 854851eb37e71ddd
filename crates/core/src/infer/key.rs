//! The conflict key: partition columns first, then the smallest column set that leaves the
//! fewest duplicate keys.

use std::collections::HashMap;

use super::column::Column;
use super::input::Record;

const MAX_KEY_COLUMNS: usize = 3;
/// Only the columns with the most distinct values are combined into key candidates.
const KEY_CANDIDATES: usize = 12;

pub(super) struct Key {
    pub(super) columns: Vec<String>,
    pub(super) evidence: Vec<String>,
    /// Key columns with one value in the whole sample (a year, a region): what a large
    /// table is partitioned by.
    pub(super) constant: Vec<String>,
}

pub(super) fn conflict_key(columns: &mut [Column], data: &[&Record], width: usize) -> Key {
    let rows: Vec<&Record> = data.iter().copied().filter(|r| r.fields.len() == width).collect();
    let mut evidence = Vec::new();
    let constant: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i].key_eligible() && columns[i].distinct == 1 && rows.len() > 1)
        .collect();
    for &i in &constant {
        evidence.push(format!(
            "{} is {:?} in every sampled record: a file-level partition (a year, a region), kept in the key so files of other partitions do not overwrite these rows",
            columns[i].name, columns[i].examples[0]
        ));
    }
    let mut candidates: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i].key_eligible() && !constant.contains(&i))
        .collect();
    candidates.sort_by_key(|&i| std::cmp::Reverse(columns[i].distinct));
    candidates.truncate(KEY_CANDIDATES);
    for (i, c) in columns.iter().enumerate() {
        if c.row_number {
            evidence.push(format!(
                "{} counts records one by one: a row number, not part of the key",
                columns[i].name
            ));
        }
    }

    let duplicates = |set: &[usize]| -> (usize, Option<(u64, u64)>) {
        let mut seen: HashMap<Vec<&str>, u64> = HashMap::with_capacity(rows.len());
        let mut dups = 0;
        let mut example = None;
        for r in &rows {
            let key: Vec<&str> = set.iter().map(|&i| r.fields[i].trim()).collect();
            if let Some(first) = seen.insert(key, r.line) {
                dups += 1;
                example.get_or_insert((first, r.line));
            }
        }
        (dups, example)
    };

    /// Duplicates left, the column set, and the lines of a first duplicate pair.
    type Candidate = (usize, Vec<usize>, Option<(u64, u64)>);
    let mut best: Option<Candidate> = None;
    let mut smaller_sets = Vec::new();
    'sizes: for size in 1..=MAX_KEY_COLUMNS.min(candidates.len()) {
        for set in combinations(&candidates, size) {
            let mut ordered = set.clone();
            ordered.sort();
            let (dups, example) = duplicates(&ordered);
            let better = best.as_ref().is_none_or(|(d, _, _)| dups < *d);
            if better {
                if let Some((d, prev, _)) = &best {
                    smaller_sets.push(format!("({}) leaves {d}", names(columns, prev)));
                }
                best = Some((dups, ordered, example));
                if dups == 0 {
                    break 'sizes;
                }
            }
        }
    }
    let mut key: Vec<usize> = constant.clone();
    match best {
        Some((dups, set, example)) => {
            key.extend(&set);
            if dups == 0 {
                evidence.push(format!(
                    "({}) is unique in the {} sampled records{}",
                    names(columns, &set),
                    rows.len(),
                    if smaller_sets.is_empty() {
                        String::new()
                    } else {
                        format!("; fewer columns are not ({})", smaller_sets.join(", "))
                    }
                ));
            } else {
                let (a, b) = example.unwrap_or((0, 0));
                evidence.push(format!(
                    "({}) leaves the fewest duplicate keys of any set of up to {MAX_KEY_COLUMNS} columns: {dups} in {} records (e.g. lines {a} and {b}); on load the later line wins and the earlier counts as superseded{}",
                    names(columns, &set),
                    rows.len(),
                    if smaller_sets.is_empty() {
                        String::new()
                    } else {
                        format!("; smaller sets leave more ({})", smaller_sets.join(", "))
                    }
                ));
            }
        }
        None if key.is_empty() => {
            // Nothing eligible: every non-null column, so that at least nothing collides wrongly.
            key = (0..columns.len()).filter(|&i| !columns[i].nullable).collect();
            evidence.push(
                "no text, integer or date column without empty values could serve as a key; every non-null column is used — choose a better key by hand".into(),
            );
        }
        None => {}
    }
    key.sort();
    for &i in &key {
        columns[i].nullable = false;
    }
    Key {
        columns: key.iter().map(|&i| columns[i].name.clone()).collect(),
        evidence,
        constant: constant.iter().map(|&i| columns[i].name.clone()).collect(),
    }
}

fn names(columns: &[Column], set: &[usize]) -> String {
    set.iter()
        .map(|&i| columns[i].name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn combinations(items: &[usize], size: usize) -> Vec<Vec<usize>> {
    if size == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for (i, &first) in items.iter().enumerate() {
        for mut rest in combinations(&items[i + 1..], size - 1) {
            rest.insert(0, first);
            out.push(rest);
        }
    }
    out
}
