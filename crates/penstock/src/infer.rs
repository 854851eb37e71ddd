//! `penstock infer <file.csv>`: proposes a dataset spec and a migration from a sample of the
//! file, writes them where `penstock run` and `penstock migrate` will find them, and says
//! what to do next.

use std::io::IsTerminal as _;
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
    #[arg(long, conflicts_with = "write")]
    pub print: bool,
    /// Write them even when standard output is not a terminal (without a configuration,
    /// `infer` then prints them by default: a script's output is the spec, not a folder).
    #[arg(long)]
    pub write: bool,
    /// Replace an existing spec of the same name.
    #[arg(long)]
    pub force: bool,
    /// A configured dataset whose files gained columns: propose the file's undeclared
    /// columns for its spec (appended to it) and an `ALTER TABLE … ADD COLUMN` migration.
    #[arg(long, value_name = "DATASET", conflicts_with_all = ["name", "key_prefix", "force"])]
    pub update: Option<String>,
}

/// The most bytes read from the file (the sample is the first `sample_rows` records).
const MAX_SAMPLE_BYTES: u64 = 256 << 20;

/// The first [`MAX_SAMPLE_BYTES`] of the file.
fn sample(file: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .with_context(|| format!("cannot open {}", file.display()))?
        .take(MAX_SAMPLE_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", file.display()))?;
    Ok(bytes)
}

pub fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    if let Some(dataset) = &args.update {
        return update(config, dataset, &args);
    }
    let bytes = sample(&args.file)?;
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
    let folders = match (&config.datasets_path, &config.migrations_path) {
        (Some(datasets), Some(migrations)) => Some((datasets.clone(), migrations.clone())),
        _ => None,
    };
    if folders.is_none() && !args.print && config.source != "built-in defaults" {
        bail!(
            "the configuration from {} names no datasets_dir or migrations_dir to write to; set them, or pass --print",
            config.source
        );
    }
    let print = args.print || (folders.is_none() && !args.write && !std::io::stdout().is_terminal());
    if print {
        if folders.is_none() && !args.print {
            eprintln!(
                "penstock infer: no configuration here and standard output is not a terminal, so the spec and \
                 migration are printed; pass --write to write them under ./config/ instead"
            );
        }
        println!("{}", inferred.spec_toml);
        println!("-- migration {version}_{name}.up.sql\n{}", inferred.up_sql);
        return Ok(());
    }
    let (datasets, migrations) = match folders {
        Some(folders) => folders,
        None => start_config_folder()?,
    };
    let (datasets, migrations) = (&datasets, &migrations);
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

/// `penstock infer --update DATASET FILE`: appends the file's undeclared columns to the
/// dataset's spec and writes the migration that adds them to its table.
fn update(config: &Config, dataset: &str, args: &Args) -> anyhow::Result<()> {
    let Some(spec) = config.dataset(dataset) else {
        let names: Vec<&str> = config.datasets.iter().map(|d| d.name.as_str()).collect();
        bail!("no dataset is named {dataset:?}; configured: {}", names.join(", "));
    };
    let bytes = sample(&args.file)?;
    let source = args.file.display().to_string();
    let proposed = penstock_core::infer::update(&bytes, spec, &source, args.sample_rows)
        .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    if proposed.columns.is_empty() {
        println!("{source}: its header has no column that dataset {dataset} does not declare; nothing to add");
        return Ok(());
    }
    let version = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let migration = format!("{version}_{dataset}_new_columns");
    let (Some(datasets), Some(migrations), false) = (&config.datasets_path, &config.migrations_path, args.print) else {
        if !args.print {
            eprintln!(
                "penstock infer: dataset {dataset} is built in (no datasets_dir to change), so the proposal is printed"
            );
        }
        println!("# append to the spec of {dataset}:\n{}", proposed.spec_toml);
        println!("-- migration {migration}.up.sql\n{}", proposed.up_sql);
        return Ok(());
    };
    let spec_path = spec_file(datasets, dataset)?;
    // The grown spec must load as penstock will read it, before anything is written.
    let mut text =
        std::fs::read_to_string(&spec_path).with_context(|| format!("cannot read {}", spec_path.display()))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&proposed.spec_toml);
    penstock_core::DatasetSpec::from_toml(&spec_path.display().to_string(), &text)
        .map_err(|e| anyhow::anyhow!("the grown spec does not validate (a bug; please report it): {e}"))?;
    std::fs::create_dir_all(migrations).with_context(|| format!("cannot create {}", migrations.display()))?;
    let up = migrations.join(format!("{migration}.up.sql"));
    let down = migrations.join(format!("{migration}.down.sql"));
    write(&up, &proposed.up_sql)?;
    write(&down, &proposed.down_sql)?;
    write(&spec_path, &text)?;
    for line in &proposed.summary {
        println!("  {line}");
    }
    println!();
    println!("added {} column(s) to {}", proposed.columns.len(), spec_path.display());
    println!("wrote {}", up.display());
    println!("wrote {}", down.display());
    println!();
    println!("next: review them (each is optional: files before this one lack it), then");
    println!("  penstock migrate          # adds the columns to {}", spec.table());
    println!("  and restart the fleet so it reads the grown spec; `penstock replay` reloads files that had them");
    Ok(())
}

/// The file in `dir` that declares dataset `name`.
fn spec_file(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml")
            && let Ok(text) = std::fs::read_to_string(&path)
            && penstock_core::DatasetSpec::from_toml("", &text).is_ok_and(|s| s.name == name)
        {
            return Ok(path);
        }
    }
    bail!("no spec in {} declares dataset {name:?}", dir.display())
}

/// Without a configuration (penstock ran on its built-in one), starts one in `./config/`:
/// `penstock.toml` with the built-in defaults, and the `datasets/` and `migrations/` folders
/// it names. `penstock run` and `penstock migrate` started in this folder read it from then on.
fn start_config_folder() -> anyhow::Result<(PathBuf, PathBuf)> {
    let root = Path::new("config");
    let (datasets, migrations) = (root.join("datasets"), root.join("migrations"));
    for dir in [&datasets, &migrations] {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            println!("created {}/", dir.display());
        }
    }
    let config = root.join("penstock.toml");
    if !config.exists() {
        write(&config, penstock_config::BUILTIN_CONFIG)?;
        println!(
            "created {} (the built-in defaults): penstock run and penstock migrate started in this folder now read \
             ./config/, so its datasets are the ones in {}/",
            config.display(),
            datasets.display()
        );
    }
    Ok((datasets, migrations))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
