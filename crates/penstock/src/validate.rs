//! `penstock validate FILE [--dataset NAME]`: a dry run of loading a file, through the same
//! validation, header resolution, coercion and deduplication code as the chunker and the
//! database consumer, touching no table, broker or store (no database is needed). Prints
//! what would load, be superseded and be quarantined; exits non-zero when the file would be
//! rejected (or, with `--strict`, when any record would be quarantined).

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use penstock_config::Config;
use penstock_core::DatasetSpec;
use penstock_core::dry_run::DryRun;
use penstock_core::validate::{Expected, Validator, Verdict};
use serde::Serialize;

/// `penstock validate`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CSV file to check.
    pub file: PathBuf,
    /// The dataset to check it against (default: the only dataset whose header it fits).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// How many quarantined records to show, with their lines and reasons.
    #[arg(long, default_value_t = 10)]
    pub reasons: usize,
    /// Exit non-zero when any record would be quarantined, not only when the file would be
    /// rejected.
    #[arg(long)]
    pub strict: bool,
}

/// What loading the file would do.
#[derive(Debug, Serialize)]
pub struct Report {
    pub file: String,
    pub dataset: String,
    /// `loads` or `rejected`.
    pub verdict: &'static str,
    /// Why the file would be rejected.
    pub reason: Option<String>,
    pub records: u64,
    /// Rows the table would hold from it (one per distinct conflict key).
    pub rows: u64,
    /// Records a later record of the same key replaces.
    pub superseded: u64,
    pub quarantined: u64,
    pub first_quarantined: Vec<Quarantined>,
    pub chunks: usize,
    /// Header columns the spec does not declare, and what `on_new_columns` does with them.
    pub new_columns: Vec<String>,
    pub on_new_columns: &'static str,
    /// Optional spec columns the file lacks (they would load NULL).
    pub absent_columns: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Quarantined {
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
    pub raw: String,
}

/// Bytes read at a time.
const BLOCK: usize = 256 * 1024;

/// Runs the dry run and prints its report; Ok(false) when the file would be rejected (or,
/// `--strict`, would quarantine records).
pub fn run(config: &Config, args: Args) -> anyhow::Result<bool> {
    let spec = choose_dataset(config, &args)?;
    let report = dry_run(config, spec, &args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(report.verdict == "loads" && !(args.strict && report.quarantined > 0))
}

fn dry_run(config: &Config, spec: &DatasetSpec, args: &Args) -> anyhow::Result<Report> {
    let path = &args.file;
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata()?.len();
    let name = path.display().to_string();
    let mut validator = Validator::new(spec, config.chunk_bytes, &name, Expected::Size(size));
    let mut block = vec![0u8; BLOCK];
    loop {
        let n = file.read(&mut block).with_context(|| format!("cannot read {name}"))?;
        if n == 0 || !validator.feed(&block[..n]) {
            break;
        }
    }
    let mut report = Report {
        file: name.clone(),
        dataset: spec.name.clone(),
        verdict: "loads",
        reason: None,
        records: 0,
        rows: 0,
        superseded: 0,
        quarantined: 0,
        first_quarantined: Vec::new(),
        chunks: 0,
        new_columns: Vec::new(),
        on_new_columns: spec.on_new_columns.as_str(),
        absent_columns: Vec::new(),
    };
    let (header, chunks) = match validator.finish() {
        Verdict::Rejected(reason) | Verdict::Changed(reason) => {
            report.verdict = "rejected";
            report.reason = Some(reason);
            return Ok(report);
        }
        Verdict::Chunks { header, chunks, .. } => (header, chunks),
    };
    report.new_columns = header.new_column_names();
    report.absent_columns = header.absent(spec).into_iter().map(String::from).collect();
    report.chunks = chunks.len();
    let mut run = DryRun::new(spec, header, args.reasons);
    let mut bytes = Vec::new();
    for chunk in &chunks {
        let plan = &chunk.plan;
        bytes.resize((plan.end - plan.start) as usize, 0);
        file.seek(SeekFrom::Start(plan.start))?;
        file.read_exact(&mut bytes)
            .with_context(|| format!("cannot read {name} again"))?;
        run.chunk(&bytes, plan.first_line);
    }
    report.records = run.records;
    report.rows = run.rows;
    report.superseded = run.superseded;
    report.quarantined = run.quarantined;
    report.first_quarantined = run
        .first_quarantined
        .into_iter()
        .map(|q| Quarantined {
            line: q.line,
            column: q.column,
            reason: q.reason,
            raw: q.raw,
        })
        .collect();
    Ok(report)
}

/// The dataset named by `--dataset`, or the only one whose header the file fits.
fn choose_dataset<'c>(config: &'c Config, args: &Args) -> anyhow::Result<&'c DatasetSpec> {
    let names = || {
        config
            .datasets
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = &args.dataset {
        return config
            .dataset(name)
            .ok_or_else(|| anyhow::anyhow!("no dataset is named {name:?}; configured: {}", names()));
    }
    if let [only] = config.datasets.as_slice() {
        return Ok(only);
    }
    let mut head = vec![0u8; 1 << 20];
    let n = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?
        .read(&mut head)?;
    let fits: Vec<&DatasetSpec> = config
        .datasets
        .iter()
        .filter(|spec| header_fits(spec, &head[..n]))
        .collect();
    match fits.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "the header of {} fits none of the datasets ({}); pass --dataset NAME to see why it does not fit one",
            args.file.display(),
            names()
        ),
        many => bail!(
            "the header of {} fits several datasets ({}); pass --dataset NAME",
            args.file.display(),
            many.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Whether the first header rows of `head` name every required column of `spec`.
fn header_fits(spec: &DatasetSpec, head: &[u8]) -> bool {
    let mut reader = spec.csv.reader_builder().from_reader(head);
    let mut headers = Vec::new();
    let mut lines = Vec::new();
    for record in reader.records().take(spec.csv.header_rows as usize) {
        let Ok(record) = record else { return false };
        lines.push(record.position().map_or(0, |p| p.line()));
        headers.push(record.iter().map(String::from).collect::<Vec<_>>());
    }
    penstock_core::header::resolve_declared(spec, &headers, &lines).is_ok()
}

fn print(r: &Report) {
    println!("{} against dataset {}:", r.file, r.dataset);
    if let Some(reason) = &r.reason {
        println!("  REJECTED: {reason}");
        println!("  nothing of it would load");
        return;
    }
    println!("  {} data records in {} chunk(s)", r.records, r.chunks);
    println!("  {} rows would load", r.rows);
    println!(
        "  {} records would be superseded by a later record of the same key",
        r.superseded
    );
    println!("  {} records would be quarantined", r.quarantined);
    if !r.new_columns.is_empty() {
        println!(
            "  columns the spec does not declare ({}): {}",
            r.on_new_columns,
            r.new_columns.join(", ")
        );
    }
    if !r.absent_columns.is_empty() {
        println!("  optional columns it lacks (NULL): {}", r.absent_columns.join(", "));
    }
    for q in &r.first_quarantined {
        println!("    line {}: {}", q.line, q.reason);
    }
    if r.quarantined > r.first_quarantined.len() as u64 {
        println!(
            "    … and {} more (--reasons N shows more)",
            r.quarantined - r.first_quarantined.len() as u64
        );
    }
    println!("  (offline: keys already in the table and rows PostgreSQL itself would refuse show only in a load)");
}
