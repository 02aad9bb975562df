//! `ooc-datagen`: command-line front end for the `ooc_datagen` generators.
//!
//! ```text
//! ooc-datagen tpch --sf 1 --out data/sf1 [--row-group-rows 1000000] [--force]
//! ooc-datagen tpcds --sf 1 --out data/tpcds-sf1 [--row-group-rows 1000000] [--force]
//! ooc-datagen edge --out data/edge [--huge-row-group]
//! ```
//!
//! Prints one line per file written (rows, row groups, size) and the elapsed time.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ooc_datagen::{
    generate_edge, generate_tpcds, generate_tpch_with_options, TpchOptions, WrittenFile,
};

#[derive(Debug, Parser)]
#[command(name = "ooc-datagen", about = "Generate Parquet test data for ooc")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// TPC-H tables (lineitem, orders, customer, part, partsupp, supplier, nation, region).
    Tpch {
        /// Scale factor (1 ≈ 6M lineitem rows).
        #[arg(long = "sf", default_value_t = 1.0)]
        scale_factor: f64,
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Maximum rows per Parquet row group.
        #[arg(long, default_value_t = 1_000_000)]
        row_group_rows: usize,
        /// Rewrite tables whose file already exists (default: skip them).
        #[arg(long)]
        force: bool,
        /// Write a bloom filter for each of these columns in every row group of its table
        /// (`l_partkey,o_custkey`).
        #[arg(long, value_name = "COL[,COL]", value_delimiter = ',')]
        bloom_filter: Vec<String>,
    },
    /// TPC-DS tables (the 25 of the benchmark: store_sales, catalog_sales, web_sales, ...).
    Tpcds {
        /// Scale factor (1 ≈ 2.9M store_sales rows).
        #[arg(long = "sf", default_value_t = 1.0)]
        scale_factor: f64,
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Maximum rows per Parquet row group.
        #[arg(long, default_value_t = 1_000_000)]
        row_group_rows: usize,
        /// Rewrite tables whose file already exists (default: skip them).
        #[arg(long)]
        force: bool,
    },
    /// The deterministic edge-case data set (types, NULLs, NaN, long strings, many row groups).
    Edge {
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Also write huge_row_group.parquet: one row group decoding to more than 512 MB.
        #[arg(long)]
        huge_row_group: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let started = Instant::now();
    let written = match cli.command {
        Command::Tpch {
            scale_factor,
            out,
            row_group_rows,
            force,
            bloom_filter,
        } => {
            let options = TpchOptions::new(scale_factor)
                .with_row_group_rows(row_group_rows)
                .with_force(force)
                .with_bloom_filter_columns(bloom_filter);
            generate_tpch_with_options(&out, &options).with_context(|| {
                format!("generating TPC-H SF{scale_factor} into {}", out.display())
            })?
        }
        Command::Tpcds {
            scale_factor,
            out,
            row_group_rows,
            force,
        } => generate_tpcds(&out, scale_factor, row_group_rows, force).with_context(|| {
            format!("generating TPC-DS SF{scale_factor} into {}", out.display())
        })?,
        Command::Edge {
            out,
            huge_row_group,
        } => generate_edge(&out, huge_row_group)
            .with_context(|| format!("generating the edge data set into {}", out.display()))?,
    };
    for file in &written {
        print_written_file(file);
    }
    println!("done in {:.2}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn print_written_file(file: &WrittenFile) {
    if file.skipped {
        println!(
            "skipped {} (exists; --force to rewrite)",
            file.path.display()
        );
    } else {
        println!(
            "wrote   {} ({} rows, {} row groups, {:.1} MiB)",
            file.path.display(),
            file.rows,
            file.row_groups,
            file.bytes as f64 / (1024.0 * 1024.0)
        );
    }
}
