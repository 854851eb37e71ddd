//! [`DbError`]: a database failure, classified as worth retrying or not.

/// A database failure, classified: transient ones (connection loss, restarts, serialization
/// failures, deadlocks) are worth retrying; the rest are not.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("PostgreSQL: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Invalid(String),
}

impl DbError {
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Sql(e) => sql_error_is_transient(e),
            _ => false,
        }
    }
}

fn sql_error_is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") // connection exceptions
                || code == "40001" // serialization failure
                || code == "40P01" // deadlock detected
                || code.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
                || code == "53300" // too many connections
        }),
        _ => false,
    }
}
