//! The pipeline over every database: each query goes where its rows are (a file's database
//! by its id, a dataset's by its name) or to each database, merged.

use super::files::{self as one, DatasetFiles, QuarantinedRow};
use crate::databases::Databases;
use crate::error::DbError;
use crate::file_state::FileState;
use crate::ledger::FileStatus;
/// [`one::files_page`] over every database (one dataset's: its database only). A page past
/// the first asks each database for every row up to it, then merges them newest first.
pub async fn files_page(
    dbs: &Databases,
    status: Option<FileState>,
    dataset: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<FileStatus>, i64), DbError> {
    if let Some(dataset) = dataset {
        return one::files_page(dbs.for_dataset(dataset), status, Some(dataset), limit, offset).await;
    }
    if dbs.all().len() == 1 {
        return one::files_page(dbs.home(), status, None, limit, offset).await;
    }
    let (mut files, mut total) = (Vec::new(), 0);
    for pool in dbs.pools() {
        let (some, all) = one::files_page(pool, status, None, offset + limit, 0).await?;
        files.extend(some);
        total += all;
    }
    crate::databases::newest_first(&mut files);
    Ok((
        files.into_iter().skip(offset as usize).take(limit as usize).collect(),
        total,
    ))
}

/// [`one::file_row`] in the database that gave out the id.
pub async fn file_row(dbs: &Databases, id: i64) -> Result<Option<FileStatus>, DbError> {
    one::file_row(dbs.for_file(id), id).await
}

/// [`one::quarantined_page`] in the file's database.
pub async fn quarantined_page(
    dbs: &Databases,
    file_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<QuarantinedRow>, i64), DbError> {
    one::quarantined_page(dbs.for_file(file_id), file_id, limit, offset).await
}

/// [`one::dataset_files`] of every database.
pub async fn dataset_files(dbs: &Databases) -> Result<Vec<DatasetFiles>, DbError> {
    let mut counts = Vec::new();
    for pool in dbs.pools() {
        counts.extend(one::dataset_files(pool).await?);
    }
    Ok(counts)
}
