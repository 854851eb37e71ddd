//! `penstock status`: every file version as a table or JSON, plus ignored objects. The table
//! is comfy-table's: boxed on a terminal, plain columns (no box characters, no trailing
//! spaces) when piped or redirected, so `grep` and `awk` keep working.

use std::io::{IsTerminal, Write};

use comfy_table::{CellAlignment, Table, presets};
use penstock_db::{Databases, FileStatus};

pub async fn print(dbs: &Databases, json: bool) -> anyhow::Result<()> {
    let files = dbs.all_files().await?;
    let ignored = penstock_db::ignored_objects(dbs.home()).await?;
    let terminal = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let written = if json {
        let doc = serde_json::json!({ "files": files, "ignored": ignored });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)
    } else {
        write_table(&mut out, &files, &ignored, terminal)
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
    terminal: bool,
) -> std::io::Result<()> {
    if files.is_empty() {
        writeln!(out, "no file versions yet")?;
    } else {
        writeln!(out, "{}", files_table(files, Reasons::UnderTheKey, terminal))?;
    }
    if !ignored.is_empty() {
        writeln!(out, "\nignored (no dataset matches the key):")?;
        for o in ignored {
            writeln!(out, "  {}", o.key)?;
        }
    }
    Ok(())
}

/// Whether a file's reason (why it was rejected or failed) is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reasons {
    UnderTheKey,
    Omitted,
}

/// One row per file version; right-aligned numbers. Boxed when `boxed` (for a terminal).
pub fn files_table<'a>(files: impl IntoIterator<Item = &'a FileStatus>, reasons: Reasons, boxed: bool) -> String {
    let mut table = Table::new();
    table.load_style(if boxed {
        presets::UTF8_FULL_CONDENSED
    } else {
        presets::NOTHING
    });
    table.set_header([
        "id",
        "status",
        "chunks",
        "loaded",
        "quarantined",
        "superseded",
        "key / reason",
    ]);
    for f in files {
        let chunks = match f.chunks_total {
            Some(total) => format!("{}/{total}", f.chunks_done),
            None => "-".into(),
        };
        let key = match &f.reason {
            Some(reason) if reasons == Reasons::UnderTheKey => format!("{}\n{reason}", f.key),
            _ => f.key.clone(),
        };
        table.add_row([
            f.id.to_string(),
            f.status.to_string(),
            chunks,
            f.rows_loaded.to_string(),
            f.rows_quarantined.to_string(),
            f.rows_superseded.to_string(),
            key,
        ]);
    }
    for numbers in [0, 2, 3, 4, 5] {
        if let Some(column) = table.column_mut(numbers) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table.trim_fmt()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn file(id: i64, status: &str, done: i32, total: Option<i32>) -> FileStatus {
        FileStatus {
            id,
            store: "s".into(),
            key: "egrid/generators/x.csv".into(),
            version: "v".into(),
            dataset: "egrid_generators".into(),
            size_bytes: 1,
            status: penstock_db::FileState::parse(status).expect("a file state"),
            reason: None,
            chunks_total: total,
            chunks_done: done,
            progress: 0.0,
            records_total: None,
            rows_loaded: 1200,
            rows_quarantined: 0,
            rows_superseded: 0,
            rows_kept: 0,
            discovered_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
            duration_seconds: None,
            new_columns: vec![],
            absent_columns: vec![],
        }
    }

    fn table(files: &[FileStatus], terminal: bool) -> String {
        let mut out = Vec::new();
        let ignored = [penstock_db::IgnoredObject {
            store: "s".into(),
            key: "misc/readme.txt".into(),
            first_seen: chrono::Utc::now(),
        }];
        write_table(&mut out, files, &ignored, terminal).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn off_a_terminal_the_table_is_plain_aligned_columns_with_each_reason_under_its_key() {
        let mut rejected = file(2, "rejected", 0, None);
        rejected.key = "egrid/generators/old.csv".into();
        rejected.rows_loaded = 0;
        rejected.reason = Some("header on line 2 lacks column(s) \"GENID\"".into());
        let mut done = file(1, "done", 1, Some(1));
        done.key = "egrid/generators/egrid2023_gen.csv".into();
        done.rows_loaded = 26_599;
        done.rows_superseded = 2;
        assert_eq!(
            table(&[rejected, done], false),
            concat!(
                " id  status    chunks  loaded  quarantined  superseded  key / reason\n",
                "  2  rejected       -       0            0           0  egrid/generators/old.csv\n",
                "                                                        header on line 2 lacks column(s) \"GENID\"\n",
                "  1  done         1/1   26599            0           2  egrid/generators/egrid2023_gen.csv\n",
                "\n",
                "ignored (no dataset matches the key):\n",
                "  misc/readme.txt\n",
            )
        );
    }

    #[test]
    fn on_a_terminal_the_table_is_boxed() {
        let text = table(&[file(1, "done", 1, Some(1))], true);
        assert!(text.starts_with('┌') && text.contains("│  1 ┆ done"), "{text}");
        assert!(!text.lines().any(|l| l.ends_with(' ')), "{text}");
    }

    #[test]
    fn with_no_file_versions_the_table_says_so() {
        assert!(table(&[], false).starts_with("no file versions yet\n"));
    }
}
