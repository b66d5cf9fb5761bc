//! Flag recall and false-flag rate of steward's prompt-injection check
//! (`retrieval::looks_like_instruction`) on a labelled JSON Lines set: one
//! object a line with `id`, `text` and `label` (`malicious` or `benign`),
//! as bastioncorpus ships it (`scripts/injection-eval` fetches it).
//!
//! The set is split by id, fixed: an id whose SHA-256 starts with an even
//! byte is in the tuning half, else in the test half. Rules are shaped on
//! the tuning half only (`--misses` lists its misses and false flags); the
//! test half is reported, never inspected.
//!
//! `cargo run --release --example injection_eval -- FILE.jsonl [--misses]`

use sha2::{Digest, Sha256};
use steward::retrieval::looks_like_instruction;

#[derive(Default)]
struct Counts {
    malicious: usize,
    caught: usize,
    benign: usize,
    false_flags: usize,
}

impl Counts {
    fn line(&self, name: &str) -> String {
        let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
        format!(
            "{name}: recall {}/{} ({:.1}%), false flags {}/{} ({:.1}%)",
            self.caught,
            self.malicious,
            pct(self.caught, self.malicious),
            self.false_flags,
            self.benign,
            pct(self.false_flags, self.benign)
        )
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or("usage: injection_eval FILE.jsonl [--misses]")?;
    let misses = args.iter().any(|a| a == "--misses");
    let (mut tune, mut test) = (Counts::default(), Counts::default());
    for (n, line) in std::fs::read_to_string(path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let (Some(id), Some(text), Some(label)) = (
            row["id"].as_str(),
            row["text"].as_str(),
            row["label"].as_str(),
        ) else {
            return Err(format!("line {}: needs id, text and label", n + 1).into());
        };
        let in_tune = Sha256::digest(id.as_bytes())[0] % 2 == 0;
        let counts = if in_tune { &mut tune } else { &mut test };
        let flagged = looks_like_instruction(text);
        let malicious = label == "malicious";
        if malicious {
            counts.malicious += 1;
            counts.caught += usize::from(flagged);
        } else {
            counts.benign += 1;
            counts.false_flags += usize::from(flagged);
        }
        if misses && in_tune && flagged != malicious {
            let what = if malicious { "missed" } else { "false flag" };
            println!(
                "{what} {id}: {}",
                text.chars().take(160).collect::<String>()
            );
        }
    }
    println!("{}", tune.line("tuning half"));
    println!("{}", test.line("test half"));
    Ok(())
}
