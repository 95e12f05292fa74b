//! `xai dissect-compare`: compare the dissections of two models (what `xai dissect` wrote).

use std::path::PathBuf;

use clap::Args;
use xai::dissect::report::{self, ReportConfig, ReportError};

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub(crate) struct DissectCompareArgs {
    /// Output folder of `xai dissect` for model A (it holds dissection.json).
    #[arg(value_name = "A_DIR")]
    a: PathBuf,
    /// Output folder of `xai dissect` for model B.
    #[arg(value_name = "B_DIR")]
    b: PathBuf,
    /// Output folder: comparison.{csv,json,md,html}, comparison_layers.csv,
    /// compare_top_concepts.{svg,png}, compare_kinds.{svg,png}.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Most frequent concepts per layer kept in the tables and charts.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
}

fn report_err(e: ReportError) -> CliError {
    CliError::Msg(e.to_string())
}

pub(crate) fn run(args: DissectCompareArgs) -> CliResult<()> {
    if args.top == 0 {
        return Err(CliError::Msg("--top must be at least 1".into()));
    }
    let a = report::read_dissection(&args.a).map_err(report_err)?;
    let b = report::read_dissection(&args.b).map_err(report_err)?;
    let cfg = ReportConfig {
        top_concepts: args.top,
        ..ReportConfig::default()
    };
    let files = report::compare_with(&a, &b, &args.out, &cfg).map_err(report_err)?;
    let c = report::compare_dissections(&a, &b, args.top);
    println!("A = {}, B = {}", c.a_model, c.b_model);
    for l in &c.layers {
        let top = |s: &Option<report::LayerSummary>| match s {
            None => "(no such layer)".to_string(),
            Some(s) => s.top_concepts.first().map_or("(no units)".into(), |t| {
                format!("{} ({:.0}%)", t.concept, t.share * 100.0)
            }),
        };
        let jaccard = l.jaccard.map_or("–".to_string(), |j| format!("{j:.3}"));
        println!(
            "{}: jaccard {jaccard}, top A {}, top B {}",
            l.layer,
            top(&l.a),
            top(&l.b)
        );
    }
    for f in &files {
        eprintln!("wrote {}", f.display());
    }
    Ok(())
}
