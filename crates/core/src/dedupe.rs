//! Dedupe inside one chunk: PostgreSQL refuses to update one row twice in one
//! `INSERT … ON CONFLICT`, so only one occurrence of a key goes to the merge: the file's
//! later one ([`LastWins`], `on_conflict = "update"` and `"record"`), or its first one
//! (`keep_first`, `on_conflict = "keep"`); the others are reported as superseded.

use std::collections::HashMap;

/// Tracks conflict keys (as encoded bytes) in file order and says which earlier row each
/// new row supersedes.
#[derive(Debug, Default)]
pub struct LastWins {
    last: HashMap<Vec<u8>, usize>,
    rows: usize,
    keep_first: bool,
}

impl LastWins {
    pub fn new() -> LastWins {
        LastWins::default()
    }

    /// The first occurrence of a key stands instead: each later one is the superseded row.
    pub fn keep_first() -> LastWins {
        LastWins {
            keep_first: true,
            ..LastWins::default()
        }
    }

    /// Records the next row's key; returns the index of the row with the same key that
    /// does not stand: the earlier one (or, keeping the first, this one).
    pub fn push(&mut self, key: &[u8]) -> Option<usize> {
        let index = self.rows;
        self.rows += 1;
        match self.last.get_mut(key) {
            Some(_) if self.keep_first => Some(index),
            Some(previous) => Some(std::mem::replace(previous, index)),
            None => {
                self.last.insert(key.to_vec(), index);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn superseded(keys: &[&str]) -> Vec<Option<usize>> {
        let mut dedupe = LastWins::new();
        keys.iter().map(|k| dedupe.push(k.as_bytes())).collect()
    }

    #[test]
    fn a_repeated_key_supersedes_its_earlier_row() {
        assert_eq!(superseded(&["a", "b", "a"]), vec![None, None, Some(0)]);
    }

    #[test]
    fn rows_without_duplicates_supersede_nothing() {
        assert_eq!(superseded(&["a", "b", "c"]), vec![None, None, None]);
    }

    #[test]
    fn keeping_the_first_every_later_occurrence_is_the_one_superseded() {
        let mut dedupe = LastWins::keep_first();
        let dead: Vec<Option<usize>> = ["a", "b", "a", "a"].iter().map(|k| dedupe.push(k.as_bytes())).collect();
        assert_eq!(dead, vec![None, None, Some(2), Some(3)]);
    }

    #[test]
    fn three_occurrences_supersede_in_a_chain_so_only_the_last_stands() {
        assert_eq!(superseded(&["a", "a", "x", "a"]), vec![None, Some(0), None, Some(1)]);
    }
}
