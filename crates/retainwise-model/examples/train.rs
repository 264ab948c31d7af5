//! Trains a churn model on a labelled CSV and writes the artifact.
//!
//! `cargo run -p retainwise-model --release --example train -- IN LABEL ID OUT [NAME]`
//! (`ID` may be `-` for none; `NAME` defaults to the first word of IN's file name).
//! The committed default model is made with
//! `… -- ../shared/data/telco-customer-churn.csv Churn customerID crates/retainwise-model/models/telco-default.json`.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::process::ExitCode;

use retainwise_model::{train_csv, TrainParams};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 || args.len() > 5 {
        eprintln!("usage: train IN LABEL ID OUT [NAME]   (ID may be - for none)");
        return ExitCode::from(2);
    }
    let (input, label, id, out) = (&args[0], &args[1], &args[2], &args[3]);
    let name = args.get(4).cloned().unwrap_or_else(|| {
        Path::new(input)
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.split(['-', '_', '.', ' ']).next())
            .unwrap_or("churn")
            .to_string()
    });
    let mut params = TrainParams::new(label.as_str());
    params.id_column = (id != "-").then(|| id.clone());
    params.name = name;
    let file = match File::open(input) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot open {input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    match train_csv(BufReader::new(file), &params) {
        Ok((model, report)) => {
            print!("{report}");
            println!("trained in {:.1} s", started.elapsed().as_secs_f64());
            let bytes = model.to_json_vec();
            if let Err(e) = std::fs::write(out, &bytes) {
                eprintln!("cannot write {out}: {e}");
                return ExitCode::FAILURE;
            }
            println!("wrote {out} ({} bytes)", bytes.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
