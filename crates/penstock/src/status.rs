//! `penstock status`: every file version as a table or JSON, plus ignored objects.

use std::io::Write;

use penstock_db::FileStatus;
use sqlx::PgPool;

pub async fn print(pool: &PgPool, json: bool) -> anyhow::Result<()> {
    let files = penstock_db::all_files(pool).await?;
    let ignored = penstock_db::ignored_objects(pool).await?;
    let mut out = std::io::stdout().lock();
    let written = if json {
        let doc = serde_json::json!({ "files": files, "ignored": ignored });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)
    } else {
        write_table(&mut out, &files, &ignored)
    };
    match written {
        // `penstock status | head` closes the pipe early: not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn write_table(
    out: &mut impl Write,
    files: &[FileStatus],
    ignored: &[penstock_db::IgnoredObject],
) -> std::io::Result<()> {
    if files.is_empty() {
        writeln!(out, "no file versions yet")?;
    } else {
        writeln!(
            out,
            "{:>5}  {:<17}  {:>9}  {:>10}  {:>11}  {:>10}  key / reason",
            "id", "status", "chunks", "loaded", "quarantined", "superseded"
        )?;
        for f in files {
            writeln!(out, "{}", line(f))?;
            if let Some(reason) = &f.reason {
                writeln!(out, "{:>7}{reason}", "")?;
            }
        }
    }
    if !ignored.is_empty() {
        writeln!(out, "\nignored (no dataset matches the key):")?;
        for o in ignored {
            writeln!(out, "  {}", o.key)?;
        }
    }
    Ok(())
}

fn line(f: &FileStatus) -> String {
    let chunks = match f.chunks_total {
        Some(total) => format!("{}/{total}", f.chunks_done),
        None => "-".into(),
    };
    format!(
        "{:>5}  {:<17}  {:>9}  {:>10}  {:>11}  {:>10}  {}",
        f.id, f.status, chunks, f.rows_loaded, f.rows_quarantined, f.rows_superseded, f.key
    )
}
