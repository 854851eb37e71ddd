//! `penstock infer <file.csv>`: proposes a dataset spec and a migration from a sample of the
//! file, writes them where `penstock run` and `penstock migrate` will find them, and says
//! what to do next.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use penstock_config::Config;
use penstock_core::infer::{InferOptions, infer, snake_case};

/// `penstock infer`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CSV file to learn from.
    pub file: PathBuf,
    /// Dataset and table name (default: from the file name, in snake_case).
    #[arg(long)]
    pub name: Option<String>,
    /// Object-key prefix the dataset owns (default: `<name>/`).
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// Data records examined (types, nullability, key).
    #[arg(long, default_value_t = 100_000)]
    pub sample_rows: usize,
    /// Print the spec and migration instead of writing them.
    #[arg(long)]
    pub print: bool,
    /// Replace an existing spec of the same name.
    #[arg(long)]
    pub force: bool,
}

/// The most bytes read from the file (the sample is the first `sample_rows` records).
const MAX_SAMPLE_BYTES: u64 = 256 << 20;

pub fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?
        .take(MAX_SAMPLE_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let stem = args
        .file
        .file_stem()
        .map(|s| snake_case(&s.to_string_lossy()))
        .unwrap_or_default();
    let name = args.name.unwrap_or(stem);
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        bail!("cannot make a dataset name from the file name; pass --name (a lowercase SQL identifier)");
    }
    if config.dataset(&name).is_some() && !args.print && !args.force {
        bail!(
            "a dataset named {name:?} is configured already; pass --name for another name, or --force to replace its spec"
        );
    }
    let key_prefix = args.key_prefix.unwrap_or_else(|| format!("{name}/"));
    let version = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let options = InferOptions {
        name: name.clone(),
        key_prefix: key_prefix.clone(),
        source: args.file.display().to_string(),
        max_records: args.sample_rows,
        version: version.clone(),
        file_bytes: std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0),
    };
    let inferred = infer(&bytes, &options).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    // The spec must load exactly as penstock will read it.
    penstock_core::DatasetSpec::from_toml(&name, &inferred.spec_toml)
        .map_err(|e| anyhow::anyhow!("the inferred spec does not validate (a bug; please report it): {e}"))?;
    if args.print {
        println!("{}", inferred.spec_toml);
        println!("-- migration {version}_{name}.up.sql\n{}", inferred.up_sql);
        return Ok(());
    }
    let (Some(datasets), Some(migrations)) = (&config.datasets_path, &config.migrations_path) else {
        bail!(
            "penstock is running on its built-in configuration, which has no folder to write to; set PENSTOCK_CONFIG to a penstock.toml (its datasets_dir and migrations_dir are used), or pass --print"
        );
    };
    let spec_path = datasets.join(format!("{name}.toml"));
    if spec_path.exists() && !args.force {
        bail!("{} exists; pass --force to replace it", spec_path.display());
    }
    std::fs::create_dir_all(migrations).with_context(|| format!("cannot create {}", migrations.display()))?;
    write(&spec_path, &inferred.spec_toml)?;
    let up = migrations.join(format!("{version}_{name}.up.sql"));
    let down = migrations.join(format!("{version}_{name}.down.sql"));
    write(&up, &inferred.up_sql)?;
    write(&down, &inferred.down_sql)?;

    for line in &inferred.summary {
        println!("  {line}");
    }
    println!();
    println!("wrote {}", spec_path.display());
    println!("wrote {}", up.display());
    println!("wrote {}", down.display());
    println!();
    println!("next: review the spec (every choice is explained in its comments), then");
    println!("  penstock migrate          # creates table {name}");
    println!("  penstock run all          # or restart the fleet so it reads the new spec");
    println!("  and drop files under {key_prefix}");
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
