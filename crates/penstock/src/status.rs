//! `penstock status`: every file version as a table or JSON, plus ignored objects.

use penstock_db::FileStatus;
use sqlx::PgPool;

pub async fn print(pool: &PgPool, json: bool) -> anyhow::Result<()> {
    let files = penstock_db::all_files(pool).await?;
    let ignored = penstock_db::ignored_objects(pool).await?;
    if json {
        let out = serde_json::json!({ "files": files, "ignored": ignored });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if files.is_empty() {
        println!("no file versions yet");
    } else {
        println!(
            "{:>5}  {:<17}  {:>9}  {:>10}  {:>11}  {:>10}  key / reason",
            "id", "status", "chunks", "loaded", "quarantined", "superseded"
        );
        for f in &files {
            println!("{}", line(f));
            if let Some(reason) = &f.reason {
                println!("{:>7}{reason}", "");
            }
        }
    }
    if !ignored.is_empty() {
        println!("\nignored (no dataset matches the key):");
        for o in &ignored {
            println!("  {}", o.key);
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
