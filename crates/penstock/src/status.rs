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

/// `penstock status --watch`: a live view — files by status, each file in flight with its
/// chunks done/total, rows/s over the last refresh, and the queue depths. On a terminal it
/// redraws in place with progress bars; otherwise it prints a plain line whenever something
/// changed. `until_idle` stops once nothing is in flight (and at least one file exists).
pub async fn watch(
    pool: &PgPool,
    config: &penstock_config::Config,
    every: std::time::Duration,
    until_idle: bool,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    let broker = penstock_broker::RabbitMq::connect(&config.amqp_url, &config.queue_prefix)
        .await
        .ok();
    let mut last: Option<(std::time::Instant, i64)> = None;
    let mut last_plain = String::new();
    loop {
        let files = penstock_db::all_files(pool).await?;
        let loaded: i64 = files
            .iter()
            .map(|f| f.rows_loaded + f.rows_quarantined + f.rows_superseded)
            .sum();
        let now = std::time::Instant::now();
        let rate = last
            .map(|(at, before)| (loaded - before) as f64 / now.duration_since(at).as_secs_f64().max(1e-3))
            .unwrap_or(0.0);
        last = Some((now, loaded));
        let mut depths = Vec::new();
        if let Some(b) = &broker {
            for (q, n) in (b as &dyn penstock_broker::WorkQueue).ready_counts().await {
                depths.push(format!("{}={n}", q.rsplit('.').next().unwrap_or(&q)));
            }
        }
        let snapshot = Snapshot::of(&files);
        let mut out = std::io::stdout().lock();
        if terminal {
            // Clear the screen and draw from the top left.
            write!(out, "\x1b[2J\x1b[H")?;
            writeln!(
                out,
                "penstock status — {}   (Ctrl-C to stop)\n",
                chrono::Utc::now().format("%H:%M:%S UTC")
            )?;
            writeln!(out, "files: {}", snapshot.by_status())?;
            writeln!(
                out,
                "rows/s: {rate:.0}   queues ready: {}\n",
                if depths.is_empty() {
                    "unknown".into()
                } else {
                    depths.join(" ")
                }
            )?;
            for f in files.iter().filter(|f| !f.is_terminal()).take(20) {
                writeln!(out, "{}", bar_line(f))?;
            }
            for f in files.iter().filter(|f| f.is_terminal()).take(10) {
                writeln!(out, "{}", line(f))?;
            }
        } else {
            let plain = format!(
                "files: {} | in flight: {} | queues ready: {}",
                snapshot.by_status(),
                files
                    .iter()
                    .filter(|f| !f.is_terminal())
                    .map(|f| format!(
                        "{} {}/{}",
                        f.id,
                        f.chunks_done,
                        f.chunks_total.map(|t| t.to_string()).unwrap_or("?".into())
                    ))
                    .collect::<Vec<_>>()
                    .join(", "),
                if depths.is_empty() {
                    "unknown".into()
                } else {
                    depths.join(" ")
                }
            );
            if plain != last_plain {
                writeln!(
                    out,
                    "{} {plain} | rows/s {rate:.0}",
                    chrono::Utc::now().format("%H:%M:%S")
                )?;
                last_plain = plain;
            }
        }
        out.flush()?;
        drop(out);
        if until_idle && !files.is_empty() && files.iter().all(FileStatus::is_terminal) {
            break;
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    if let Some(b) = broker {
        penstock_broker::WorkQueue::close(&b).await;
    }
    Ok(())
}

struct Snapshot {
    counts: std::collections::BTreeMap<String, usize>,
}

impl Snapshot {
    fn of(files: &[FileStatus]) -> Snapshot {
        let mut counts = std::collections::BTreeMap::new();
        for f in files {
            *counts.entry(f.status.to_string()).or_insert(0) += 1;
        }
        Snapshot { counts }
    }

    fn by_status(&self) -> String {
        if self.counts.is_empty() {
            return "none yet".into();
        }
        self.counts
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One file in flight with a progress bar of its chunks.
fn bar_line(f: &FileStatus) -> String {
    const WIDTH: usize = 30;
    let (done, total) = (
        f.chunks_done.max(0) as usize,
        f.chunks_total.unwrap_or(0).max(0) as usize,
    );
    let filled = (done * WIDTH).checked_div(total).unwrap_or(0).min(WIDTH);
    format!(
        "{:>5}  {:<10} [{}{}] {:>5}/{:<5} {:>10} rows  {}",
        f.id,
        f.status,
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        done,
        f.chunks_total.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
        f.rows_loaded,
        f.key
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(status: &str, done: i32, total: Option<i32>) -> FileStatus {
        FileStatus {
            id: 7,
            store: "s".into(),
            key: "egrid/generators/x.csv".into(),
            version: "v".into(),
            dataset: "egrid_generators".into(),
            size_bytes: 1,
            status: penstock_db::FileState::parse(status).expect("a file state"),
            reason: None,
            chunks_total: total,
            chunks_done: done,
            records_total: None,
            rows_loaded: 1200,
            rows_quarantined: 0,
            rows_superseded: 0,
            discovered_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn a_progress_bar_fills_with_the_chunks_done() {
        let line = bar_line(&file("loading", 3, Some(6)));
        assert!(
            line.contains(&format!("[{}{}]", "#".repeat(15), "-".repeat(15))),
            "{line}"
        );
        assert!(line.contains("3/6"), "{line}");
        let line = bar_line(&file("chunking", 0, None));
        assert!(
            line.contains(&format!("[{}]", "-".repeat(30))) && line.contains("0/?"),
            "{line}"
        );
    }

    #[test]
    fn files_are_counted_by_status() {
        let files = [
            file("done", 1, Some(1)),
            file("done", 1, Some(1)),
            file("loading", 0, Some(2)),
        ];
        assert_eq!(Snapshot::of(&files).by_status(), "done 2, loading 1");
        assert_eq!(Snapshot::of(&[]).by_status(), "none yet");
    }
}
