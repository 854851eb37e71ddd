//! What loading a file would do, computed without a database (`penstock validate`): the
//! chunks the validator planned are parsed and coerced exactly as the database consumer
//! does, and the conflict keys of the whole file are kept to count the records a later
//! record of the same key would supersede.
//!
//! What it cannot know offline: which keys the table holds already (a row that would update
//! rather than insert), and rows PostgreSQL itself would refuse (a CHECK constraint or
//! trigger of the table): both show only in a real load.

use std::collections::HashSet;

use crate::copy_text;
use crate::header::HeaderMap;
use crate::rows::{QuarantinedRecord, coerce_records};
use crate::spec::DatasetSpec;

/// The dry run of one file, fed its planned chunks in order.
pub struct DryRun<'a> {
    spec: &'a DatasetSpec,
    header: HeaderMap,
    key_indexes: Vec<usize>,
    keys: HashSet<Vec<u8>>,
    limit: usize,
    /// Data records seen.
    pub records: u64,
    /// Rows that would be in the table afterwards (one per distinct key).
    pub rows: u64,
    /// Records a later record of the same key replaces.
    pub superseded: u64,
    /// Records that would be quarantined.
    pub quarantined: u64,
    /// The first `limit` of them, by line.
    pub first_quarantined: Vec<QuarantinedRecord>,
}

impl<'a> DryRun<'a> {
    /// A dry run against `header` (the validator's), keeping the first `limit` quarantined
    /// records.
    pub fn new(spec: &'a DatasetSpec, header: HeaderMap, limit: usize) -> DryRun<'a> {
        DryRun {
            spec,
            header,
            key_indexes: spec.key_indexes(),
            keys: HashSet::new(),
            limit,
            records: 0,
            rows: 0,
            superseded: 0,
            quarantined: 0,
            first_quarantined: Vec::new(),
        }
    }

    /// Parses one planned chunk (`bytes`, starting on physical line `first_line`).
    pub fn chunk(&mut self, bytes: &[u8], first_line: u64) {
        let mut key = Vec::new();
        let (keys, key_indexes) = (&mut self.keys, &self.key_indexes);
        let (mut rows, mut superseded) = (0, 0);
        let (records, quarantined) = coerce_records(bytes, self.spec, &self.header, first_line, |_, values| {
            key.clear();
            for &i in key_indexes {
                copy_text::push_value(&mut key, &values[i]);
                key.push(b'\t');
            }
            if keys.insert(key.clone()) {
                rows += 1;
            } else {
                superseded += 1;
            }
        });
        self.records += records;
        self.rows += rows;
        self.superseded += superseded;
        self.quarantined += quarantined.len() as u64;
        let room = self.limit.saturating_sub(self.first_quarantined.len());
        self.first_quarantined.extend(quarantined.into_iter().take(room));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DatasetSpec {
        DatasetSpec::from_toml(
            "t",
            r#"
name = "t"
key_prefix = "t/"
conflict_key = ["id"]
[[columns]]
name = "id"
source = "ID"
type = "integer"
nullable = false
[[columns]]
name = "v"
source = "V"
type = "numeric"
"#,
        )
        .unwrap()
    }

    fn header() -> HeaderMap {
        HeaderMap {
            field_count: 2,
            columns: vec![0, 1],
            new_columns: vec![],
        }
    }

    #[test]
    fn duplicates_across_chunks_are_superseded_and_bad_records_quarantined_with_their_lines() {
        let spec = spec();
        let mut run = DryRun::new(&spec, header(), 1);
        run.chunk(b"1,1\n2,x\n", 2);
        run.chunk(b"1,3\n3,y\n4,4\n", 4);
        assert_eq!((run.records, run.rows, run.superseded, run.quarantined), (5, 2, 1, 2));
        assert_eq!(run.first_quarantined.len(), 1, "only the first `limit` are kept");
        assert_eq!(run.first_quarantined[0].line, 3);
        assert!(run.first_quarantined[0].reason.contains("\"x\" is not a number"));
    }
}
