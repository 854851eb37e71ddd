//! Dedupe inside one chunk: PostgreSQL refuses to update one row twice in one
//! `INSERT … ON CONFLICT`, and the file's later occurrence of a key is the one that stands,
//! so earlier occurrences are dropped before the merge and reported as superseded.

use std::collections::HashMap;

/// Tracks conflict keys (as encoded bytes) in file order and says which earlier row each
/// new row supersedes.
#[derive(Debug, Default)]
pub struct LastWins {
    last: HashMap<Vec<u8>, usize>,
    rows: usize,
}

impl LastWins {
    pub fn new() -> LastWins {
        LastWins::default()
    }

    /// Records the next row's key; returns the index of the earlier row with the same key,
    /// which this row supersedes.
    pub fn push(&mut self, key: &[u8]) -> Option<usize> {
        let index = self.rows;
        self.rows += 1;
        match self.last.get_mut(key) {
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
    fn three_occurrences_supersede_in_a_chain_so_only_the_last_stands() {
        assert_eq!(superseded(&["a", "a", "x", "a"]), vec![None, Some(0), None, Some(1)]);
    }
}
