//! Datasets on their own databases: [`Databases`] holds a pool per distinct database (the
//! home one, `database_url`, first) and says which one holds a dataset and which one holds a
//! file version.
//!
//! A dataset's table, its file versions (`ingest_files`), chunk ledger, quarantine and the
//! events of its state changes (outbox) live in the dataset's database, so a chunk's load
//! stays one local transaction; its dead items are recorded there too, with the failure of
//! the file they name. What belongs to no dataset stays home: ignored objects, dead items that
//! name no file, alerts and webhook deliveries.
//!
//! Each database has a shard number (`database_identity`, 0 for home): its file and event
//! ids start at `shard << 40`, so a file id names one file version across every database
//! and [`Databases::for_file`] finds it without asking. The numbers are given out the first
//! time a configuration that names the database connects (`penstock migrate` does it first),
//! in the configuration's order, and never change.

use std::collections::HashMap;

use sqlx::PgPool;

use crate::dead::{DeadItem, record_dead_items};
use crate::error::DbError;
use crate::ledger::{FileStatus, all_files};
use crate::setup::connect;

/// How many low bits of a file or event id count within its database.
pub const SHARD_BITS: u32 = 40;

/// The database (shard) a file id was given out by.
pub fn shard_of(id: i64) -> i32 {
    (id >> SHARD_BITS) as i32
}

/// The first id a database with this shard gives out.
fn first_id(shard: i32) -> i64 {
    (i64::from(shard) << SHARD_BITS).max(1)
}

/// One distinct database.
#[derive(Clone)]
pub struct Database {
    pub pool: PgPool,
    pub shard: i32,
    /// What names it in messages: `database_url`, or `database_url of dataset NAME`.
    pub label: String,
    /// Its `database_identity` id: two URLs of one database have the same.
    identity: String,
}

/// Every database of a configuration, each once (two URLs of one database share a pool).
#[derive(Clone)]
pub struct Databases {
    /// Home first.
    all: Vec<Database>,
    /// Datasets whose database is not home, to their index in `all`.
    by_dataset: HashMap<String, usize>,
}

impl Databases {
    /// Only the home database (shard 0), already connected: for a configuration whose
    /// datasets all live there, and for tests.
    pub fn single(pool: PgPool) -> Databases {
        Databases {
            all: vec![Database {
                pool,
                shard: 0,
                label: "database_url".into(),
                identity: String::new(),
            }],
            by_dataset: HashMap::new(),
        }
    }

    /// Connects to `home` and to every dataset's own database (`(dataset, url)`), each once,
    /// and gives a database that has no shard number yet the next free one. Fails, naming
    /// the database and the fix, when one is not migrated, or already holds file versions
    /// numbered by another database, or shares a number with another.
    pub async fn connect(home: &str, datasets: &[(&str, &str)], max_connections: u32) -> Result<Databases, DbError> {
        let mut databases = Databases {
            all: Vec::new(),
            by_dataset: HashMap::new(),
        };
        databases.add("database_url".into(), home, max_connections).await?;
        let mut urls: HashMap<&str, usize> = HashMap::from([(home, 0)]);
        for (dataset, url) in datasets {
            let index = match urls.get(url) {
                Some(&index) => index,
                None => {
                    let label = format!("database_url of dataset {dataset}");
                    let index = databases.add(label, url, max_connections).await?;
                    urls.insert(url, index);
                    index
                }
            };
            if index != 0 {
                databases.by_dataset.insert(dataset.to_string(), index);
            }
        }
        Ok(databases)
    }

    /// Connects to `url` and returns its index in `all`: an existing one when it is another
    /// URL of a database already connected (same identity), else a new one with its shard
    /// (the next free one when it needs one; 0 for the first, home).
    async fn add(&mut self, label: String, url: &str, max_connections: u32) -> Result<usize, DbError> {
        let pool = connect(url, max_connections).await?;
        let (identity, shard) = identity(&pool, &label).await?;
        if let Some(index) = self.all.iter().position(|d| d.identity == identity) {
            pool.close().await;
            return Ok(index);
        }
        let wanted = self.all.iter().map(|d| d.shard + 1).max().unwrap_or(0);
        let shard = claim(&pool, &label, shard, wanted, &self.all).await?;
        self.all.push(Database {
            pool,
            shard,
            label,
            identity,
        });
        Ok(self.all.len() - 1)
    }

    /// The home database (`database_url`): ignored objects, dead items, alerts.
    pub fn home(&self) -> &PgPool {
        &self.all[0].pool
    }

    /// The database that holds a dataset's table and ledger (home unless it has its own).
    pub fn for_dataset(&self, dataset: &str) -> &PgPool {
        &self.all[self.by_dataset.get(dataset).copied().unwrap_or(0)].pool
    }

    /// The database that gave out a file id, or an outbox event id (home for an id of no
    /// known database, where looking it up then finds nothing).
    pub fn for_file(&self, file_id: i64) -> &PgPool {
        &self.all[self.index_of(file_id)].pool
    }

    /// Whether a file or event id belongs to the home database (as [`Databases::for_file`]
    /// decides: an id of no known database counts as home's).
    pub fn is_home(&self, id: i64) -> bool {
        self.index_of(id) == 0
    }

    /// Every database, home first.
    pub fn all(&self) -> &[Database] {
        &self.all
    }

    /// Every pool, home first.
    pub fn pools(&self) -> impl Iterator<Item = &PgPool> {
        self.all.iter().map(|d| &d.pool)
    }

    /// Every file version of every database, newest first (by discovery; ids of different
    /// databases are not in time order).
    pub async fn all_files(&self) -> Result<Vec<FileStatus>, DbError> {
        let mut files = Vec::new();
        for pool in self.pools() {
            files.extend(all_files(pool).await?);
        }
        newest_first(&mut files);
        Ok(files)
    }

    /// Records dead items where their files are: each database's in one transaction with
    /// the failure of its files; items that name no file at home. Returns how many were new.
    pub async fn record_dead_items(&self, items: &[DeadItem]) -> Result<u64, DbError> {
        let mut recorded = 0;
        for (index, db) in self.all.iter().enumerate() {
            let here: Vec<DeadItem> = items
                .iter()
                .filter(|item| match item.file_id {
                    Some(id) => self.index_of(id) == index,
                    None => index == 0,
                })
                .cloned()
                .collect();
            if !here.is_empty() {
                recorded += record_dead_items(&db.pool, &here).await?;
            }
        }
        Ok(recorded)
    }

    /// Which of `all` gave out an id (home for an id of no known database).
    fn index_of(&self, id: i64) -> usize {
        let shard = shard_of(id);
        self.all.iter().position(|d| d.shard == shard).unwrap_or(0)
    }

    /// Closes every pool.
    pub async fn close(&self) {
        for pool in self.pools() {
            pool.close().await;
        }
    }
}

/// Sorts file versions newest first: by discovery time, then id.
pub fn newest_first(files: &mut [FileStatus]) {
    files.sort_by(|a, b| b.discovered_at.cmp(&a.discovered_at).then(b.id.cmp(&a.id)));
}

/// A database's identity and shard number (None until one is given).
async fn identity(pool: &PgPool, label: &str) -> Result<(String, Option<i32>), DbError> {
    let row = sqlx::query!(r#"SELECT id::text AS "id!", shard FROM database_identity"#)
        .fetch_optional(pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => DbError::Invalid(format!(
                "{label} is not migrated (it has no database_identity table); run `penstock migrate`"
            )),
            _ => DbError::from(e),
        })?;
    match row {
        Some(row) => Ok((row.id, row.shard)),
        None => Err(DbError::Invalid(format!(
            "{label} has an empty database_identity table; run `penstock migrate` again"
        ))),
    }
}

/// What a database's shard number becomes when a configuration connects to it.
#[derive(Debug, PartialEq)]
enum Choice {
    Keep(i32),
    /// Given (or given again): its ids then start in this shard's range.
    Give(i32),
    /// It already holds ids of a range another database of the configuration uses.
    Copied(i32),
    /// It holds ids numbered as if it were the only database.
    Numbered,
}

/// The shard of a database that has `current` (None: not given yet) and holds `numbered`
/// file versions and events, in a configuration whose other databases hold `taken`; `wanted`
/// is the next free one (0 for `database_url`, which keeps the ids it gave out before).
fn choose(current: Option<i32>, taken: &[i32], wanted: i32, numbered: i64) -> Choice {
    match current {
        Some(shard) if !taken.contains(&shard) => Choice::Keep(shard),
        None if wanted == 0 => Choice::Give(0),
        // Nothing numbered yet (e.g. migrated once as a database_url of its own): renumbered.
        _ if numbered == 0 => Choice::Give(wanted),
        Some(shard) => Choice::Copied(shard),
        None => Choice::Numbered,
    }
}

/// The database's shard (see [`choose`]), `seen` being what a read without a lock found; a
/// shard given sets where its file and event ids start. `known` are the configuration's databases connected so far.
async fn claim(pool: &PgPool, label: &str, seen: Option<i32>, wanted: i32, known: &[Database]) -> Result<i32, DbError> {
    let taken: Vec<i32> = known.iter().map(|d| d.shard).collect();
    if let Some(shard) = seen.filter(|s| !taken.contains(s)) {
        return Ok(shard);
    }
    if sqlx::query_scalar!(r#"SELECT pg_is_in_recovery() AS "standby!""#)
        .fetch_one(pool)
        .await?
    {
        return Err(DbError::Invalid(format!(
            "{label} is a hot standby whose primary has not been given its shard number yet (table \
             database_identity); run `penstock migrate` against the primary (database_url) first"
        )));
    }
    if known.is_empty() {
        // Home keeps what it has or takes 0, whatever others do: one statement, so no
        // process ever holds this row locked across a round trip (a role partitioned while
        // starting must not stop the others from starting).
        let shard = sqlx::query_scalar!("UPDATE database_identity SET shard = coalesce(shard, 0) RETURNING shard")
            .fetch_one(pool)
            .await?;
        return Ok(shard.unwrap_or(0));
    }
    let mut tx = pool.begin().await?;
    // Locked: another process of the same configuration may be deciding too.
    let current = sqlx::query_scalar!("SELECT shard FROM database_identity FOR UPDATE")
        .fetch_one(&mut *tx)
        .await?;
    let numbered =
        sqlx::query_scalar!(r#"SELECT (SELECT count(*) FROM ingest_files) + (SELECT count(*) FROM outbox) AS "n!""#)
            .fetch_one(&mut *tx)
            .await?;
    let shard = match choose(current, &taken, wanted, numbered) {
        Choice::Keep(shard) => shard,
        Choice::Give(shard) => {
            sqlx::query!("UPDATE database_identity SET shard = $1", shard)
                .execute(&mut *tx)
                .await?;
            if shard != 0 {
                sqlx::query!(
                    "SELECT setval(pg_get_serial_sequence('ingest_files', 'id'), $1, false) AS files, \
                            setval(pg_get_serial_sequence('outbox', 'id'), $1, false) AS events",
                    first_id(shard)
                )
                .fetch_one(&mut *tx)
                .await?;
            }
            shard
        }
        Choice::Copied(shard) => {
            let other = known
                .iter()
                .find(|d| d.shard == shard)
                .map_or("another database", |d| d.label.as_str());
            return Err(DbError::Invalid(format!(
                "{label} and {other} both have shard number {shard} (table database_identity) and {label} holds \
                 {numbered} file versions and events: was one database copied from the other? Give the dataset an \
                 empty, migrated database and load its files again"
            )));
        }
        Choice::Numbered => {
            return Err(DbError::Invalid(format!(
                "{label} already holds {numbered} file versions and events numbered as if it were the only \
                 database; a dataset's own database must start without any (give it a new, migrated database)"
            )));
        }
    };
    tx.commit().await?;
    Ok(shard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_id_names_the_database_that_gave_it_out() {
        assert_eq!(shard_of(1), 0);
        assert_eq!(shard_of((1 << SHARD_BITS) - 1), 0);
        assert_eq!(shard_of(first_id(1)), 1);
        assert_eq!(shard_of(first_id(3) + 12345), 3);
    }

    #[test]
    fn a_database_keeps_its_shard_unless_another_of_the_configuration_has_it() {
        assert_eq!(choose(Some(2), &[0, 1], 3, 10), Choice::Keep(2));
        assert_eq!(choose(Some(0), &[], 0, 10), Choice::Keep(0), "home, as before");
        assert_eq!(choose(None, &[], 0, 10), Choice::Give(0), "home upgraded: its ids stay");
        assert_eq!(choose(None, &[0], 1, 0), Choice::Give(1));
        assert_eq!(
            choose(Some(0), &[0], 1, 0),
            Choice::Give(1),
            "migrated alone once, still empty"
        );
        assert_eq!(choose(Some(0), &[0], 1, 5), Choice::Copied(0));
        assert_eq!(choose(None, &[0], 1, 5), Choice::Numbered);
    }

    #[test]
    fn the_home_database_numbers_from_one() {
        assert_eq!(first_id(0), 1);
        assert_eq!(first_id(2), 2 << SHARD_BITS);
    }
}
