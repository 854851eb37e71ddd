//! `penstock diff FROM TO`: the rows added, changed (old → new values) and absent from one
//! file version of a dataset to another, by conflict key (see `penstock_db::read::diff`).

use anyhow::{Context as _, bail};
use penstock_config::Config;
use penstock_db::read::{DiffRow, diff};

/// Prints the diff from file version `from` to `to`, at most `limit` rows of each kind.
pub async fn run(config: &Config, from: i64, to: i64, limit: usize, json: bool) -> anyhow::Result<()> {
    if limit == 0 {
        bail!("--limit must be at least 1");
    }
    let dbs = crate::ops::connect_databases(config).await?;
    let file = |id: i64| {
        let dbs = &dbs;
        async move {
            penstock_db::read::everywhere::file_row(dbs, id)
                .await?
                .with_context(|| format!("no file version has id {id}; `penstock status` lists them"))
        }
    };
    let (old, new) = (file(from).await?, file(to).await?);
    if old.dataset != new.dataset {
        bail!(
            "file {from} is of dataset {} and file {to} of {}: a diff compares versions of one dataset",
            old.dataset,
            new.dataset
        );
    }
    let spec = config
        .dataset(&new.dataset)
        .with_context(|| format!("dataset {:?} is not configured", new.dataset))?;
    let d = diff(dbs.for_file(to), spec, from, to, limit).await?;
    dbs.close().await;
    if json {
        let rows = |rows: &[DiffRow]| -> Vec<serde_json::Value> {
            rows.iter()
                .map(|r| {
                    let columns: serde_json::Map<String, serde_json::Value> = r
                        .columns
                        .iter()
                        .map(|(c, (old, new))| (c.clone(), serde_json::json!({ "old": old, "new": new })))
                        .collect();
                    serde_json::json!({ "key": r.key, "columns": columns })
                })
                .collect()
        };
        let out = serde_json::json!({
            "dataset": spec.name, "from": from, "to": to,
            "added_total": d.added_total, "changed_total": d.changed_total, "absent_total": d.absent_total,
            "unchanged": d.unchanged, "complete": d.complete, "note": d.note,
            "added": rows(&d.added), "changed": rows(&d.changed), "absent": rows(&d.absent),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} {} → {} {} (dataset {}): {} added, {} changed, {} absent, {} unchanged",
        from, old.key, to, new.key, spec.name, d.added_total, d.changed_total, d.absent_total, d.unchanged
    );
    if let Some(note) = &d.note {
        println!("  incomplete: {note}");
    }
    // The key in the spec's order.
    let key = |r: &DiffRow| {
        spec.conflict_key
            .iter()
            .map(|k| format!("{k}={}", r.key.get(k).unwrap_or(&serde_json::Value::Null)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let value = |v: &Option<serde_json::Value>| v.as_ref().map_or("-".to_string(), |v| v.to_string());
    for (mark, rows) in [("+", &d.added), ("~", &d.changed), ("-", &d.absent)] {
        for r in rows {
            let changes: Vec<String> = r
                .columns
                .iter()
                .map(|(c, (old, new))| match mark {
                    "~" => format!("{c}: {} → {}", value(old), value(new)),
                    "+" => format!("{c}={}", value(new)),
                    _ => format!("{c}={}", value(old)),
                })
                .collect();
            println!("  {mark} {}  {}", key(r), changes.join(", "));
        }
    }
    let shown = (d.added.len() + d.changed.len() + d.absent.len()) as u64;
    if shown < d.added_total + d.changed_total + d.absent_total {
        println!("  (at most {limit} of each kind shown; --limit N shows more)");
    }
    Ok(())
}
