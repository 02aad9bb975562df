//! The `ooc` command-line tool: SQL over Parquet files (`ooc query`) and file inspection
//! (`ooc schema`). All the work happens in the library crates; this file is glue: flags,
//! output, progress and exit codes (0 success, 1 query or data error, 2 usage error).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use ooc::sink::{write_batches, write_file, OutputFormat, TableCut, WriteOptions, TABLE_MAX_ROWS};
use ooc::{CacheSettings, EngineError, Session, SessionConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// ooc: out-of-core SQL over Parquet files, in bounded memory.
#[derive(Parser, Debug)]
#[command(name = "ooc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a SQL query over Parquet files.
    ///
    /// Examples:
    ///   ooc query --data data/sf1 "SELECT l_returnflag, count(*) FROM lineitem GROUP BY 1"
    ///   ooc query "SELECT * FROM 'data/sf1/orders.parquet' ORDER BY o_totalprice DESC LIMIT 5"
    ///   ooc query --data data/sf1 --file q01.sql -o result.parquet
    ///   ooc query --data data/sf1 --file q06.sql --explain-analyze
    #[command(verbatim_doc_comment)]
    Query(Box<QueryArgs>),
    /// Print the schema, row count and row-group statistics of Parquet files.
    Schema {
        /// A file, glob or directory.
        path: String,
    },
    /// Build, list or drop secondary indexes (roaring-bitmap sidecars beside the data files).
    ///
    /// Examples:
    ///   ooc index create data/sf10/lineitem.parquet --columns l_partkey,l_suppkey
    ///   ooc index list data/sf10
    ///   ooc index drop data/sf10/lineitem.parquet --columns l_suppkey
    #[command(subcommand, verbatim_doc_comment)]
    Index(IndexCommand),
    /// Inspect and trim the result cache (`ooc query --cache`).
    ///
    /// Examples:
    ///   ooc cache list
    ///   ooc cache prune --max-size 2GB
    ///   ooc cache verify
    #[command(verbatim_doc_comment)]
    Cache(CacheArgs),
}

#[derive(Args, Debug)]
struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
    /// The cache directory (default: the user cache directory, e.g. ~/.cache/ooc).
    #[arg(long, value_name = "DIR", env = "OOC_CACHE_DIR", global = true)]
    cache_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum CacheCommand {
    /// Every entry, least recently used first: key, rows, size, compute time, last use, inputs.
    List,
    /// Entries, bytes, the size bound and the compute time stored.
    Stats,
    /// Check every entry completely (checksums, every batch decoded); remove bad ones.
    Verify,
    /// Remove least recently used entries until the cache fits MAX_SIZE (default: its bound),
    /// and files left by killed processes.
    Prune {
        /// The size to prune to, e.g. 10GB.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<usize>,
    },
    /// Remove every entry (named ones too).
    Clear,
    /// Remove the result persisted as NAME (`ooc query --persist NAME`).
    Drop {
        /// The name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum IndexCommand {
    /// Index COLUMNS of every Parquet file at PATH (a file, glob or directory): queries that
    /// filter them with =, IN, ranges, IS NULL or LIKE 'prefix%' then read only the rows that
    /// match. Columns already indexed are rebuilt.
    Create {
        /// A file, glob or directory.
        path: String,
        /// The columns to index.
        #[arg(long, value_name = "COL[,COL]", value_delimiter = ',', required = true)]
        columns: Vec<String>,
        /// Write the sidecars here instead of beside the data files (for read-only data;
        /// queries then need the same --index-dir).
        #[arg(long, value_name = "DIR", env = "OOC_INDEX_DIR")]
        index_dir: Option<PathBuf>,
        /// Memory for sorting, e.g. 256MB (default: half of the machine's memory).
        #[arg(long, value_name = "SIZE", env = "OOC_MEMORY_LIMIT", value_parser = parse_limit)]
        memory_limit: Option<MemoryLimit>,
        /// Directory for sorted runs (default: the system temp directory).
        #[arg(long, value_name = "DIR", env = "OOC_TEMP_DIR")]
        temp_dir: Option<PathBuf>,
        /// Never show a progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// List the indexes of the Parquet files at PATH, and any that are stale or damaged.
    List {
        /// A file, glob or directory.
        path: String,
        /// Also look for sidecars here.
        #[arg(long, value_name = "DIR", env = "OOC_INDEX_DIR")]
        index_dir: Option<PathBuf>,
    },
    /// Remove the indexes of the Parquet files at PATH (of COLUMNS only, if given).
    Drop {
        /// A file, glob or directory.
        path: String,
        /// Only these columns.
        #[arg(long, value_name = "COL[,COL]", value_delimiter = ',')]
        columns: Vec<String>,
        /// The sidecars are here (not beside the data files).
        #[arg(long, value_name = "DIR", env = "OOC_INDEX_DIR")]
        index_dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct QueryArgs {
    /// The SQL text (or use --file).
    sql: Option<String>,
    /// Read the SQL from this file.
    #[arg(short, long, value_name = "FILE", conflicts_with = "sql")]
    file: Option<PathBuf>,
    /// Register every NAME.parquet file and NAME/ folder in DIR as table NAME.
    #[arg(long, value_name = "DIR")]
    data: Vec<PathBuf>,
    /// Register a table: NAME=PATH (file, glob or directory; `.csv`, `.tsv`, `.json`,
    /// `.ndjson` and `.jsonl` files, also `.gz` or `.zst`, are read as text, anything else as
    /// Parquet).
    #[arg(long = "table", value_name = "NAME=PATH")]
    tables: Vec<String>,
    /// Output format (default: table on stdout, or from the -o file's extension).
    #[arg(long, value_name = "csv|json|ndjson|parquet|npy|table")]
    format: Option<OutputFormat>,
    /// Write the result to FILE (atomically: temporary file, then rename).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// How NULL is written in CSV output.
    #[arg(long, value_name = "S", default_value = "")]
    null_string: String,
    /// Element type of a .npy output (one 2-D array, row-major, every column converted).
    #[arg(
        long,
        value_name = "float32|float64|int32|int64",
        default_value = "float32"
    )]
    npy_dtype: ooc::sink::NpyType,
    /// Write a bloom filter for each of these columns in a Parquet output, so that `col = v`
    /// and `col IN (...)` skip row groups without the values.
    #[arg(long, value_name = "COL[,COL]", value_delimiter = ',')]
    bloom_filter: Vec<String>,
    /// Print the optimized physical plan with pruning decisions instead of running.
    #[arg(long, conflicts_with = "explain_analyze")]
    explain: bool,
    /// Run the query and print per-operator rows, time and peak bytes, who held the memory at
    /// the query's peak, wall time, peak RSS and bytes read (as JSON with --format json).
    #[arg(long)]
    explain_analyze: bool,
    /// Write the query's memory profile to FILE (.svg, or .html with the summary): a flame
    /// graph of the memory held at the peak (operator, part) over the timeline of reserved
    /// bytes against the process's RSS.
    #[arg(long, value_name = "FILE")]
    memory_profile: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", env = "OOC_THREADS")]
    threads: Option<usize>,
    /// Rows per batch.
    #[arg(long, value_name = "N", default_value_t = 8192)]
    batch_size: usize,
    /// Memory budget, e.g. 512MB or 2GB; operators that outgrow it spill to --temp-dir.
    /// "none" for no limit. Default: half of the machine's memory.
    #[arg(long, value_name = "SIZE", env = "OOC_MEMORY_LIMIT", value_parser = parse_limit)]
    memory_limit: Option<MemoryLimit>,
    /// Directory for spill files (default: the system temp directory).
    #[arg(long, value_name = "DIR", env = "OOC_TEMP_DIR")]
    temp_dir: Option<PathBuf>,
    /// Most disk space spill files may take at once, e.g. 20GB (default: unlimited).
    #[arg(long, value_name = "SIZE", env = "OOC_MAX_TEMP_SIZE", value_parser = parse_size)]
    max_temp_size: Option<usize>,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Do not use secondary indexes (`ooc index create`).
    #[arg(long)]
    no_index: bool,
    /// Look for index sidecars here first (then beside the data files).
    #[arg(long, value_name = "DIR", env = "OOC_INDEX_DIR")]
    index_dir: Option<PathBuf>,
    /// Serve the result from the result cache when the same query over the same files was
    /// run before, and store it otherwise (`ooc cache --help`).
    #[arg(long, env = "OOC_CACHE")]
    cache: bool,
    /// The result cache's directory (default: the user cache directory, e.g. ~/.cache/ooc).
    #[arg(long, value_name = "DIR", env = "OOC_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// The result cache's size bound (default: the smaller of 10GB and a tenth of the free
    /// disk); least recently used entries go first.
    #[arg(long, value_name = "SIZE", env = "OOC_CACHE_MAX_SIZE", value_parser = parse_size)]
    cache_max_size: Option<usize>,
    /// Results computed faster than this are not cached, e.g. 0, 250ms, 2s (default: 100ms).
    #[arg(long, value_name = "TIME", env = "OOC_CACHE_MIN_TIME", value_parser = parse_duration)]
    cache_min_time: Option<Duration>,
    /// Compress new cache entries with zstd (smaller on disk; a hit then decompresses them).
    #[arg(long, env = "OOC_CACHE_COMPRESS")]
    cache_compress: bool,
    /// Store the result in the cache directory under NAME instead of printing it: later
    /// queries (in any process) read it as table NAME, without recomputing it. Named results
    /// are never evicted; `ooc cache drop NAME` removes one.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["output", "explain", "explain_analyze"])]
    persist: Option<String>,
}

/// `0`, `250ms`, `2s`, `1.5m`.
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim().to_lowercase();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if t == "0" {
        ("0", 1.0)
    } else {
        return Err(format!(
            "'{text}' is not a duration (use e.g. 0, 250ms, 2s, 1m)"
        ));
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (use e.g. 0, 250ms, 2s, 1m)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("'{text}' is not a duration"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// A `--memory-limit` value: a size, or no limit at all.
#[derive(Clone, Copy, Debug)]
struct MemoryLimit(Option<usize>);

fn parse_limit(text: &str) -> std::result::Result<MemoryLimit, String> {
    if matches!(text.trim().to_lowercase().as_str(), "none" | "unlimited") {
        return Ok(MemoryLimit(None));
    }
    parse_size(text).map(|size| MemoryLimit(Some(size)))
}

fn parse_size(text: &str) -> std::result::Result<usize, String> {
    ooc::parse_size(text)
}

fn main() -> ExitCode {
    ooc::allocator::tune_mimalloc();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Query(args) => run_query(*args),
        Command::Schema { path } => run_schema(&path),
        Command::Index(command) => run_index(command),
        Command::Cache(args) => run_cache(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", render_error(&e));
            if let Some(hint) = hint_for(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::BrokenPipe;
        }
        if let Some(EngineError::Output { source, .. }) = cause.downcast_ref::<EngineError>() {
            return source.kind() == std::io::ErrorKind::BrokenPipe;
        }
        if let Some(EngineError::Arrow(arrow::error::ArrowError::IoError(_, io))) =
            cause.downcast_ref::<EngineError>()
        {
            return io.kind() == std::io::ErrorKind::BrokenPipe;
        }
        cause.to_string().contains("Broken pipe")
    })
}

/// What to change on the command line, for errors whose engine message names a setting.
fn hint_for(e: &anyhow::Error) -> Option<&'static str> {
    e.chain()
        .find_map(|cause| match cause.downcast_ref::<EngineError>() {
            Some(EngineError::Spill { message, .. }) if message.contains("max_temp_size") => {
                Some("raise the spill quota with --max-temp-size SIZE (or OOC_MAX_TEMP_SIZE)")
            }
            Some(EngineError::ResourcesExhausted { .. }) => {
                Some("raise the budget with --memory-limit SIZE (or OOC_MEMORY_LIMIT)")
            }
            _ => None,
        })
}

/// Errors with their context chain; syntax errors also show the offending line.
fn render_error(e: &anyhow::Error) -> String {
    // The chain, each cause once: many errors print their source in their own message
    // (`cannot write out.parquet: No space left on device`), and would repeat it.
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) || text.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    for cause in e.chain() {
        if let Some(SqlContext { sql, line, column }) = cause.downcast_ref::<SqlContext>() {
            if let Some(text) = sql.lines().nth(line.saturating_sub(1)) {
                out.push_str(&format!(
                    "\n  {text}\n  {}^",
                    " ".repeat(column.saturating_sub(1))
                ));
            }
        }
    }
    out
}

#[derive(Debug)]
struct SqlContext {
    sql: String,
    line: usize,
    column: usize,
}

impl std::fmt::Display for SqlContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "in the query at line {}, column {}",
            self.line, self.column
        )
    }
}

impl std::error::Error for SqlContext {}

fn run_schema(path: &str) -> Result<()> {
    let dataset = ooc::io::ParquetDataset::open(path)?;
    let text = ooc::io::describe(&dataset);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn run_query(args: QueryArgs) -> Result<()> {
    let sql = match (&args.sql, &args.file) {
        (Some(sql), None) => sql.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read SQL file {}", file.display()))?,
        _ => {
            eprintln!(
                "error: give the SQL text or --file FILE\n\nUsage: ooc query [OPTIONS] <SQL>"
            );
            std::process::exit(2);
        }
    };
    let mut config = SessionConfig::default()
        .with_batch_size(args.batch_size)
        .with_temp_dir(args.temp_dir.clone())
        .with_max_temp_size(args.max_temp_size.map(|b| b as u64))
        .with_indexes(!args.no_index)
        .with_index_dir(args.index_dir.clone());
    if let Some(MemoryLimit(limit)) = args.memory_limit {
        config = config.with_memory_limit(limit);
    }
    if let Some(threads) = args.threads {
        config = config.with_threads(threads);
    }
    if args.cache {
        let mut settings = match &args.cache_dir {
            Some(dir) => CacheSettings::in_dir(dir),
            None => CacheSettings::new(),
        }
        .with_max_size(args.cache_max_size.map(|b| b as u64))
        .with_compression(args.cache_compress);
        if let Some(min) = args.cache_min_time {
            settings = settings.with_min_compute(min);
        }
        config = config.with_cache(Some(settings));
    }
    let session = Session::new(config);
    for dir in &args.data {
        session
            .register_directory(dir)
            .with_context(|| format!("cannot register tables from {}", dir.display()))?;
    }
    for table in &args.tables {
        let Some((name, path)) = table.split_once('=') else {
            eprintln!("error: --table expects NAME=PATH, got '{table}'");
            std::process::exit(2);
        };
        session
            .register_file(name.trim(), path.trim())
            .with_context(|| format!("cannot register table {}", name.trim()))?;
    }
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(ooc::cache::default_cache_dir);
    register_persisted(&session, &sql, &cache_dir)?;

    let df = match session.sql(&sql) {
        Ok(df) => df,
        Err(e @ EngineError::Syntax { line, column, .. }) if line > 0 => {
            return Err(anyhow::Error::new(SqlContext {
                sql,
                line: line as usize,
                column: column as usize,
            })
            .context(e));
        }
        Err(e @ EngineError::TableNotFound { .. }) if session.table_names().is_empty() => {
            return Err(anyhow::Error::new(e)
                .context("no tables are registered: use --data DIR or --table NAME=PATH"));
        }
        Err(e) => return Err(e.into()),
    };

    if args.explain {
        print!("{}", df.explain(false)?);
        return Ok(());
    }
    if let Some(name) = &args.persist {
        let started = std::time::Instant::now();
        let persisted = df.persist_as(Some(name))?;
        let rows = match persisted.logical_plan() {
            ooc::LogicalPlan::TableScan(scan) => scan.source.num_rows(),
            _ => 0,
        };
        eprintln!(
            "persisted as {name}: {rows} rows in {:.2} s; query it as table {name}",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }

    let format = match (&args.format, &args.output) {
        (Some(f), _) => *f,
        (None, Some(path)) => OutputFormat::from_path(path).with_context(|| {
            format!(
                "cannot tell the format from '{}'; pass --format csv|json|ndjson|parquet|npy",
                path.display()
            )
        })?,
        (None, None) => OutputFormat::Table,
    };
    if !args.bloom_filter.is_empty() && format != OutputFormat::Parquet {
        bail!(
            "--bloom-filter applies to Parquet output (-o FILE.parquet), not to {}",
            format!("{format:?}").to_lowercase()
        );
    }
    // Row i of a .npy array is row i of the input: a model's features and labels written to
    // separate arrays must line up.
    let df = if format == OutputFormat::Npy {
        let config = df.config().clone().with_row_order(ooc::RowOrder::Source);
        df.with_config(config)
    } else {
        df
    };
    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    let mut stream = df.execute()?;
    let progress = show_progress.then(|| ProgressDisplay::start(stream.progress()));

    if args.explain_analyze {
        let json = match args.format {
            None | Some(OutputFormat::Table) => false,
            Some(OutputFormat::Json) => true,
            Some(other) => bail!(
                "--explain-analyze prints a text or a JSON report (--format json), not {}",
                format!("{other:?}").to_lowercase()
            ),
        };
        let mut rows = 0usize;
        for batch in stream.by_ref() {
            rows += batch?.num_rows();
        }
        drop(progress);
        write_memory_profile(&args, &stream)?;
        if json {
            let mut report: serde_json::Value = serde_json::from_str(&stream.report_json())?;
            report["output_rows"] = rows.into();
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("{}output rows: {rows}", stream.report());
        }
        return Ok(());
    }

    let options = WriteOptions {
        null_string: args.null_string.clone(),
        threads: Some(stream.threads()),
        npy_dtype: args.npy_dtype,
        bloom_filter_columns: args.bloom_filter.clone(),
    };
    let schema = stream.schema();

    let result = write_output(&args, format, &options, schema, &mut stream);
    drop(progress);
    result?;
    write_memory_profile(&args, &stream)?;
    for warning in stream.warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// Write the memory profile of a query that ran to `--memory-profile FILE`, if asked.
fn write_memory_profile(args: &QueryArgs, stream: &ooc::QueryStream) -> Result<()> {
    let Some(path) = &args.memory_profile else {
        return Ok(());
    };
    let title = match &args.file {
        Some(file) => format!("ooc memory profile: {}", file.display()),
        None => {
            let sql = args.sql.as_deref().unwrap_or_default();
            let short: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = short.chars().take(80).collect();
            format!("ooc memory profile: {short}")
        }
    };
    let html = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let text = if html {
        stream.memory_profile_html(&title)
    } else {
        stream.memory_profile_svg(&title)
    };
    ooc::sink::write_text_file(path, &text)
        .with_context(|| format!("cannot write the memory profile {}", path.display()))?;
    eprintln!("memory profile written to {}", path.display());
    Ok(())
}

/// Write the query's rows where `args` say (a file, or stdout as a table or a file format).
fn write_output(
    args: &QueryArgs,
    format: OutputFormat,
    options: &WriteOptions,
    schema: arrow::datatypes::SchemaRef,
    stream: &mut ooc::QueryStream,
) -> anyhow::Result<()> {
    match &args.output {
        Some(path) => {
            if format == OutputFormat::Table {
                bail!("-o needs a file format (csv, json, ndjson or parquet), not table");
            }
            let rows = write_file(path, schema, stream.by_ref(), format, options)?;
            eprintln!(
                "wrote {rows} rows to {} in {:.2?}",
                path.display(),
                stream.elapsed()
            );
        }
        None if format == OutputFormat::Table => {
            let mut cut = TableCut::new(schema, TABLE_MAX_ROWS);
            for batch in stream.by_ref() {
                cut.push(&batch?);
            }
            let mut text = cut.format()?;
            if cut.is_cut() && text.ends_with(')') {
                text.pop();
                text.push_str("; use --format csv or -o FILE for all)");
            }
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{text}")?;
            stdout.flush()?;
        }
        None => {
            let mut writer = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
            write_batches(schema, stream.by_ref(), format, options, &mut writer)?;
            writer.flush()?;
        }
    }
    Ok(())
}

fn run_index(command: IndexCommand) -> Result<()> {
    use ooc::index::{create_indexes, drop_indexes, list_indexes, IndexBuildOptions};
    match command {
        IndexCommand::Create {
            path,
            columns,
            index_dir,
            memory_limit,
            temp_dir,
            no_progress,
        } => {
            let dataset = ooc::io::ParquetDataset::open(&path)?;
            let limit = match memory_limit {
                Some(MemoryLimit(Some(limit))) => limit,
                Some(MemoryLimit(None)) => usize::MAX / 4,
                None => ooc::default_memory_limit().unwrap_or(1 << 30),
            };
            let total = dataset.num_rows() * columns.len() as u64;
            let bar = (!no_progress && std::io::stderr().is_terminal()).then(|| {
                let bar = indicatif::ProgressBar::new(total);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {bar:30} {human_pos}/{human_len} rows indexed",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            });
            let progress = bar.clone().map(|bar| {
                Arc::new(move |rows: u64| bar.inc(rows)) as Arc<dyn Fn(u64) + Send + Sync>
            });
            let started = std::time::Instant::now();
            let reports = create_indexes(
                &dataset,
                &columns,
                &IndexBuildOptions {
                    index_dir,
                    memory_limit: limit,
                    temp_dir,
                    progress,
                },
            )?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let rows = dataset.num_rows().max(1);
            let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
            eprintln!(
                "indexed {} of {} file(s), {} rows, in {:.2?}: {} in sidecars, {:.2} bytes per row per column",
                columns.join(", "),
                reports.len(),
                dataset.num_rows(),
                started.elapsed(),
                ooc::format_bytes(bytes),
                bytes as f64 / rows as f64 / columns.len() as f64
            );
        }
        IndexCommand::List { path, index_dir } => {
            let dataset = ooc::io::ParquetDataset::open(&path)?;
            let mut out = std::io::stdout().lock();
            for report in list_indexes(&dataset, index_dir.as_deref()) {
                let Some(sidecar) = &report.sidecar else {
                    writeln!(out, "{}: no index", report.data_file.display())?;
                    continue;
                };
                writeln!(
                    out,
                    "{}: {} ({}){}",
                    report.data_file.display(),
                    sidecar.display(),
                    ooc::format_bytes(report.bytes),
                    match &report.ignored {
                        Some(reason) => format!(" IGNORED, {reason}"),
                        None => String::new(),
                    }
                )?;
                for c in &report.columns {
                    writeln!(
                        out,
                        "  {} {}: {} distinct values, {} rows, {} NULL, {} ({:.2} bytes per row)",
                        c.name,
                        c.data_type,
                        c.distinct,
                        c.rows,
                        c.nulls,
                        ooc::format_bytes(c.bytes),
                        c.bytes as f64 / (c.rows + c.nulls).max(1) as f64
                    )?;
                }
            }
        }
        IndexCommand::Drop {
            path,
            columns,
            index_dir,
        } => {
            let dataset = ooc::io::ParquetDataset::open(&path)?;
            let only = (!columns.is_empty()).then_some(columns.as_slice());
            let reports = drop_indexes(&dataset, only, index_dir.as_deref())?;
            for report in &reports {
                match &report.sidecar {
                    None => eprintln!("{}: index removed", report.data_file.display()),
                    Some(_) => {
                        let left: Vec<&str> =
                            report.columns.iter().map(|c| c.name.as_str()).collect();
                        eprintln!(
                            "{}: index now covers {}",
                            report.data_file.display(),
                            left.join(", ")
                        )
                    }
                }
            }
            if reports.is_empty() {
                eprintln!("no index to drop at {path}");
            }
        }
    }
    Ok(())
}

/// Register the results persisted in `cache_dir` (`--persist NAME`) whose names the SQL
/// mentions and that no other table has taken.
fn register_persisted(session: &Session, sql: &str, cache_dir: &std::path::Path) -> Result<()> {
    if !cache_dir.is_dir() {
        return Ok(());
    }
    let words: std::collections::HashSet<String> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map(|w| w.to_lowercase())
        .collect();
    let taken = session.table_names();
    let cache = ooc::cache::ResultCache::open(&ooc::cache::CacheOptions::new(cache_dir))?;
    for (name, _) in cache.names() {
        let lower = name.to_lowercase();
        if words.contains(&lower) && !taken.contains(&lower) {
            let frame = session
                .read_cached(&name, cache.open_named(&name)?)
                .with_context(|| format!("cannot read the result persisted as {name}"))?;
            session.register_view(&name, &frame);
        }
    }
    Ok(())
}

fn run_cache(args: CacheArgs) -> Result<()> {
    use ooc::cache::{CacheOptions, ResultCache};
    let dir = args.cache_dir.unwrap_or_else(ooc::cache::default_cache_dir);
    let cache = ResultCache::open(&CacheOptions::new(&dir))
        .with_context(|| format!("cannot open the result cache in {}", dir.display()))?;
    let mut out = std::io::stdout().lock();
    let print_report = |out: &mut dyn Write, what: &str, report: &ooc::cache::PruneReport| {
        for (key, reason) in &report.removed {
            writeln!(out, "removed {key}: {reason}")?;
        }
        writeln!(
            out,
            "{what}: {} entries checked, {} removed, {} leftover files removed, {} freed",
            report.checked,
            report.removed.len(),
            report.leftovers,
            ooc::format_bytes(report.freed)
        )
    };
    match args.command {
        CacheCommand::List => {
            let now = std::time::SystemTime::now();
            for entry in cache.entries() {
                let m = &entry.manifest;
                let ago = now
                    .duration_since(entry.last_access)
                    .map_or(0, |d| d.as_secs());
                writeln!(
                    out,
                    "{}  {} rows  {}  computed in {:.3} s  used {} ago  {} input files{}{}",
                    m.key,
                    m.rows,
                    ooc::format_bytes(entry.disk_bytes),
                    m.compute_ms as f64 / 1000.0,
                    format_age(ago),
                    m.inputs.len(),
                    if entry.names.is_empty() {
                        String::new()
                    } else {
                        format!("  persisted as {}", entry.names.join(", "))
                    },
                    if m.compression == "none" {
                        String::new()
                    } else {
                        format!("  ({})", m.compression)
                    }
                )?;
                if let Some(first) = m.plan.lines().next() {
                    writeln!(out, "    {first}")?;
                }
            }
        }
        CacheCommand::Stats => {
            let stats = cache.stats();
            writeln!(out, "directory: {}", stats.dir.display())?;
            writeln!(out, "entries: {}", stats.entries)?;
            writeln!(
                out,
                "size: {} of {} ({:.1}%)",
                ooc::format_bytes(stats.bytes),
                ooc::format_bytes(stats.max_size),
                100.0 * stats.bytes as f64 / stats.max_size.max(1) as f64
            )?;
            writeln!(out, "rows: {}", stats.rows)?;
            writeln!(
                out,
                "compute time stored: {:.1} s",
                stats.compute_ms as f64 / 1000.0
            )?;
            writeln!(out, "leftover files of killed writers: {}", stats.leftovers)?;
        }
        CacheCommand::Verify => {
            let report = cache.verify();
            print_report(&mut out, "verify", &report)?;
            if !report.removed.is_empty() {
                anyhow::bail!("{} bad cache entries (removed)", report.removed.len());
            }
        }
        CacheCommand::Prune { max_size } => {
            let report = cache.prune(max_size.map(|b| b as u64));
            print_report(&mut out, "prune", &report)?;
        }
        CacheCommand::Clear => {
            let report = cache.clear();
            print_report(&mut out, "clear", &report)?;
        }
        CacheCommand::Drop { name } => {
            if !cache.unname(&name)? {
                bail!("no result is persisted as '{name}' in {}", dir.display());
            }
            writeln!(out, "dropped {name}")?;
        }
    }
    Ok(())
}

fn format_age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// A progress bar on stderr (only when stderr is a terminal), updated from the query's
/// counters by a background thread.
struct ProgressDisplay {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressDisplay {
    fn start(progress: Arc<ooc::Progress>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} row groups  {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            std::thread::sleep(Duration::from_millis(300));
            while !flag.load(Ordering::Relaxed) {
                bar.set_length(progress.total.load(Ordering::Relaxed));
                bar.set_position(progress.done.load(Ordering::Relaxed));
                let rows = progress.rows.load(Ordering::Relaxed);
                let secs = bar.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!("{:.1} M rows/s", rows as f64 / secs / 1e6));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
