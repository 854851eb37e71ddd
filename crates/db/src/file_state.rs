//! [`FileState`]: where a file version is in its life, as the `ingest_files.status` column
//! holds it (migration 0001's CHECK lists the same names).

use std::fmt;

use serde::Serialize;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// A file version's state. Discovered → chunking → loading → one of the four terminal states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Recorded by the scanner; its file item is (or is about to be) published.
    Discovered,
    /// The chunker is validating it and planning its chunks.
    Chunking,
    /// Its chunks are planned; database consumers are loading them.
    Loading,
    /// Every chunk committed, nothing quarantined.
    Done,
    /// Every chunk committed; some rows are in the quarantine.
    DoneWithErrors,
    /// The file as a whole cannot be loaded (header, dialect, too many bad rows); no row loaded.
    Rejected,
    /// Loading stopped on a failure (a dead work item, a changed object).
    Failed,
}

impl FileState {
    /// Every state, in lifecycle order.
    pub const ALL: [FileState; 7] = [
        FileState::Discovered,
        FileState::Chunking,
        FileState::Loading,
        FileState::Done,
        FileState::DoneWithErrors,
        FileState::Rejected,
        FileState::Failed,
    ];

    /// The states nothing more happens in (see [`FileState::is_terminal`]).
    pub const TERMINAL: [FileState; 4] = [
        FileState::Done,
        FileState::DoneWithErrors,
        FileState::Rejected,
        FileState::Failed,
    ];

    /// Every state's name, in lifecycle order.
    pub const NAMES: [&'static str; 7] = names(FileState::ALL);

    /// The terminal states' names, for SQL that guards a file against moving once it has
    /// ended (bound as a `text[]`, so the names live here only).
    pub const TERMINAL_NAMES: [&'static str; 4] = names(FileState::TERMINAL);

    /// The name the database and the API use.
    pub const fn as_str(self) -> &'static str {
        match self {
            FileState::Discovered => "discovered",
            FileState::Chunking => "chunking",
            FileState::Loading => "loading",
            FileState::Done => "done",
            FileState::DoneWithErrors => "done_with_errors",
            FileState::Rejected => "rejected",
            FileState::Failed => "failed",
        }
    }

    /// The state a name stands for.
    pub fn parse(name: &str) -> Option<FileState> {
        FileState::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether nothing more will happen to a file version in this state.
    pub fn is_terminal(self) -> bool {
        FileState::TERMINAL.contains(&self)
    }

    /// Whether the file ended without loading all of its rows.
    pub fn is_unsuccessful(self) -> bool {
        matches!(self, FileState::Rejected | FileState::Failed)
    }
}

/// The names of `states`, in their order.
const fn names<const N: usize>(states: [FileState; N]) -> [&'static str; N] {
    let mut names = [""; N];
    let mut i = 0;
    while i < N {
        names[i] = states[i].as_str();
        i += 1;
    }
    names
}

impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for FileState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

// Stored as text: the column stays readable in psql and its CHECK names the states.
impl Type<Postgres> for FileState {
    fn type_info() -> PgTypeInfo {
        <&str as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for FileState {
    fn decode(value: PgValueRef<'r>) -> Result<FileState, BoxDynError> {
        let name = <&str as Decode<Postgres>>::decode(value)?;
        FileState::parse(name).ok_or_else(|| format!("ingest_files.status {name:?} is no known file state").into())
    }
}

impl Encode<'_, Postgres> for FileState {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&str as Encode<Postgres>>::encode(self.as_str(), buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_parses_back_from_its_name() {
        for state in FileState::ALL {
            assert_eq!(FileState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert_eq!(FileState::parse("finished"), None);
    }

    #[test]
    fn only_the_four_end_states_are_terminal() {
        let terminal: Vec<&str> = FileState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(FileState::as_str)
            .collect();
        assert_eq!(terminal, ["done", "done_with_errors", "rejected", "failed"]);
        assert_eq!(FileState::TERMINAL_NAMES, terminal[..]);
    }

    /// The single-quoted literals in `sql`.
    fn literals(sql: &str) -> Vec<&str> {
        sql.split('\'').skip(1).step_by(2).collect()
    }

    #[test]
    fn the_migration_allows_exactly_the_states_the_code_knows() {
        let migration = include_str!("../../../migrations/0001_ingest_ledger.up.sql");
        let check = migration
            .lines()
            .find(|line| line.contains("CHECK (status IN"))
            .expect("migration 0001 checks ingest_files.status");
        assert_eq!(literals(check), FileState::NAMES);
    }

    /// The ledger's SQL names some states as literals (where binding them would hide them
    /// from the planner); every query is in the committed offline data, so each literal is
    /// checked here against the enum. A misspelt state fails this test, not a file at run time.
    #[test]
    fn every_state_the_ledger_sql_names_is_a_file_state() {
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.sqlx");
        let mut seen = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&data).expect("the offline query data is committed") {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let query: serde_json::Value = serde_json::from_str(&text).unwrap();
            let sql = query["query"].as_str().unwrap();
            if sql.contains("ingest_files") {
                seen.extend(literals(sql).into_iter().map(str::to_string));
            }
        }
        // Not states: an error kind, a dataset name, the tables and column whose id
        // sequences a dataset database's shard moves (databases.rs), and the empty lists and
        // key of a file's new and absent columns (ledger.rs).
        let other = [
            "dead_item",
            "egrid_generators",
            "ingest_files",
            "outbox",
            "id",
            "[]",
            "{}",
            "name",
            "blank",
        ];
        for literal in &seen {
            assert!(
                FileState::parse(literal).is_some() || other.contains(&literal.as_str()),
                "{literal:?} in a query over ingest_files is neither a FileState name nor a known literal"
            );
        }
        assert!(
            seen.contains("chunking"),
            "the scan found the ledger's queries: {seen:?}"
        );
    }
}
