//! `penstock status --watch`: a live view — files by status, each file in flight with its
//! chunks done/total, rows/s over the last refresh, and the queue depths. On a terminal,
//! indicatif redraws it in place with a progress bar per file in flight; otherwise it prints
//! a plain line whenever something changed. `until_idle` stops once nothing is in flight (and
//! at least one file exists).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use penstock_broker::WorkQueue;
use penstock_db::{Databases, FileStatus};

use crate::status::{Reasons, files_table};

/// Files in flight with a bar, and finished files listed, at most.
const BARS: usize = 20;
const FINISHED: usize = 10;

pub async fn run(
    dbs: &Databases,
    config: &penstock_config::Config,
    every: Duration,
    until_idle: bool,
) -> anyhow::Result<()> {
    let broker = penstock_workers::context::connect_broker(config).await.ok();
    let mut live = std::io::stdout()
        .is_terminal()
        .then(|| LiveView::new(ProgressDrawTarget::stdout()));
    let mut last: Option<(Instant, i64)> = None;
    let mut last_plain = String::new();
    loop {
        let files = dbs.all_files().await?;
        let loaded: i64 = files
            .iter()
            .map(|f| f.rows_loaded + f.rows_quarantined + f.rows_superseded)
            .sum();
        let now = Instant::now();
        let rate = last
            .map(|(at, before)| (loaded - before) as f64 / now.duration_since(at).as_secs_f64().max(1e-3))
            .unwrap_or(0.0);
        last = Some((now, loaded));
        let mut depths = Vec::new();
        if let Some(b) = &broker {
            for (q, n) in (b as &dyn WorkQueue).ready_counts().await {
                depths.push(format!("{}={n}", q.rsplit('.').next().unwrap_or(&q)));
            }
        }
        let queues = if depths.is_empty() {
            "unknown".to_string()
        } else {
            depths.join(" ")
        };
        let by_status = Snapshot::of(&files).by_status();
        match &mut live {
            Some(view) => view.show(
                &files,
                format!(
                    "penstock status — {}   (Ctrl-C to stop)\n\nfiles: {by_status}\nrows/s: {rate:.0}   queues ready: {queues}\n",
                    chrono::Utc::now().format("%H:%M:%S UTC")
                ),
            ),
            None => {
                let plain = format!(
                    "files: {by_status} | in flight: {} | queues ready: {queues}",
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
                );
                if plain != last_plain {
                    let mut out = std::io::stdout().lock();
                    writeln!(
                        out,
                        "{} {plain} | rows/s {rate:.0}",
                        chrono::Utc::now().format("%H:%M:%S")
                    )?;
                    out.flush()?;
                    last_plain = plain;
                }
            }
        }
        if until_idle && !files.is_empty() && files.iter().all(FileStatus::is_terminal) {
            break;
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    if let Some(b) = broker {
        WorkQueue::close(&b).await;
    }
    // The view's last drawing stays on the screen.
    drop(live);
    Ok(())
}

/// The terminal view, drawn by indicatif: a header, a bar per file in flight (chunks done of
/// total), then the latest finished files as a table.
struct LiveView {
    multi: MultiProgress,
    header: ProgressBar,
    in_flight: BTreeMap<i64, ProgressBar>,
    finished: ProgressBar,
}

impl LiveView {
    fn new(target: ProgressDrawTarget) -> LiveView {
        let multi = MultiProgress::with_draw_target(target);
        let text = || ProgressBar::no_length().with_style(style("{msg}"));
        let header = multi.add(text());
        let finished = multi.add(text());
        LiveView {
            multi,
            header,
            in_flight: BTreeMap::new(),
            finished,
        }
    }

    fn show(&mut self, files: &[FileStatus], header: String) {
        self.header.set_message(header);
        let flowing: Vec<&FileStatus> = files.iter().filter(|f| !f.is_terminal()).take(BARS).collect();
        // A file no longer in flight loses its bar (it joins the finished files).
        let multi = &self.multi;
        self.in_flight.retain(|id, bar| {
            let keep = flowing.iter().any(|f| f.id == *id);
            if !keep {
                multi.remove(bar);
            }
            keep
        });
        for f in flowing {
            let bar = self
                .in_flight
                .entry(f.id)
                .or_insert_with(|| multi.insert_before(&self.finished, ProgressBar::no_length()));
            // An unknown or zero total draws an empty bar and "?".
            match f.chunks_total {
                Some(total) if total > 0 => {
                    bar.set_style(style("{prefix} [{bar:30}] {pos:>5}/{len:<5} {msg}"));
                    bar.set_length(total as u64);
                }
                _ => {
                    bar.set_style(style("{prefix} [{bar:30}] {pos:>5}/?     {msg}"));
                    bar.unset_length();
                }
            }
            bar.set_position(f.chunks_done.max(0) as u64);
            bar.set_prefix(format!("{:>5}  {:<10}", f.id, f.status.as_str()));
            bar.set_message(format!("{:>10} rows  {}", f.rows_loaded, f.key));
        }
        let finished: Vec<&FileStatus> = files.iter().filter(|f| f.is_terminal()).take(FINISHED).collect();
        self.finished.set_message(if finished.is_empty() {
            String::new()
        } else {
            format!("\n{}", files_table(finished, Reasons::Omitted, true))
        });
        // indicatif draws at most 20 times a second and skips the rest of a burst: draw the
        // final state of every line now.
        self.header.force_draw();
        self.in_flight.values().for_each(ProgressBar::force_draw);
        self.finished.force_draw();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("#-")
}

struct Snapshot {
    counts: BTreeMap<String, usize>,
}

impl Snapshot {
    fn of(files: &[FileStatus]) -> Snapshot {
        let mut counts = BTreeMap::new();
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

#[cfg(test)]
mod tests {
    use indicatif::InMemoryTerm;

    use super::*;
    use crate::status::tests::file;

    fn view() -> (LiveView, InMemoryTerm) {
        let term = InMemoryTerm::new(40, 160);
        (
            LiveView::new(ProgressDrawTarget::term_like(Box::new(term.clone()))),
            term,
        )
    }

    #[test]
    fn a_progress_bar_fills_with_the_chunks_done() {
        let (mut view, term) = view();
        view.show(
            &[file(7, "loading", 3, Some(6)), file(8, "chunking", 0, None)],
            "header".into(),
        );
        let screen = term.contents();
        let bar = |id: &str| {
            screen
                .lines()
                .find(|l| l.trim_start().starts_with(id))
                .unwrap_or_default()
        };
        assert!(
            bar("7 ").contains(&format!("[{}{}]     3/6 ", "#".repeat(15), "-".repeat(15))),
            "{screen}"
        );
        assert!(
            bar("8 ").contains(&format!("[{}]     0/?  ", "-".repeat(30))),
            "{screen}"
        );
        assert!(bar("7 ").contains("loading") && bar("7 ").contains("1200 rows  egrid/generators/x.csv"));
        assert_eq!(bar("7 ").find('['), bar("8 ").find('['), "bars line up: {screen}");
    }

    #[test]
    fn a_file_that_finishes_loses_its_bar_and_is_listed_under_the_files_in_flight() {
        let (mut view, term) = view();
        view.show(
            &[file(7, "loading", 3, Some(6)), file(8, "loading", 1, Some(2))],
            "files: loading 2".into(),
        );
        view.show(
            &[file(7, "done", 6, Some(6)), file(8, "loading", 2, Some(2))],
            "files: done 1, loading 1".into(),
        );
        let screen = term.contents();
        let lines: Vec<&str> = screen.lines().collect();
        assert_eq!(lines[0], "files: done 1, loading 1", "{screen}");
        assert!(
            lines[1].trim_start().starts_with("8 ") && lines[1].contains("2/2"),
            "{screen}"
        );
        assert_eq!(lines.iter().filter(|l| l.contains('[')).count(), 1, "{screen}");
        assert!(lines.iter().any(|l| l.contains("│  7 ┆ done")), "{screen}");
    }

    #[test]
    fn files_are_counted_by_status() {
        let files = [
            file(1, "done", 1, Some(1)),
            file(2, "done", 1, Some(1)),
            file(3, "loading", 0, Some(2)),
        ];
        assert_eq!(Snapshot::of(&files).by_status(), "done 2, loading 1");
        assert_eq!(Snapshot::of(&[]).by_status(), "none yet");
    }
}
