//! The demo warehouse: a deterministic SQLite database for a fictional B2B
//! SaaS company ("Lumen Analytics"), with 180 days of activity ending the day
//! before the as-of date.
//!
//! Same `(as_of, scale)` → the same database, byte for byte in content: all
//! randomness comes from one ChaCha8 stream with a fixed seed. The most recent
//! Tuesday before the as-of date carries a planted drop in iOS signups, so
//! "why did signups drop last Tuesday?" has a findable answer.

mod accounts;
mod activity;
mod people;
pub mod postgres;
mod writer;

use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use writer::Writer;

/// Days of activity generated, ending the day before the as-of date.
pub const HISTORY_DAYS: i64 = 180;

/// Share of iOS signups removed on the planted-drop Tuesday.
pub const PLANTED_DROP: f64 = 0.8;

/// What was generated, stored beside the database as `<file>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoManifest {
    /// "Today" for the data: activity ends the day before.
    pub as_of: NaiveDate,
    /// Size factor (1.0 ≈ 1.3 million events).
    pub scale: f64,
    /// The Tuesday with the planted iOS signup drop.
    pub planted_drop_on: NaiveDate,
    /// Row counts per table.
    pub rows: Vec<(String, u64)>,
}

impl DemoManifest {
    /// The manifest path for a database path (`demo.sqlite` → `demo.sqlite.json`).
    pub fn path_for(db: &Path) -> PathBuf {
        let mut p = db.as_os_str().to_owned();
        p.push(".json");
        PathBuf::from(p)
    }

    /// Reads the manifest next to `db`, if there is one.
    pub fn read(db: &Path) -> Option<DemoManifest> {
        let text = std::fs::read_to_string(Self::path_for(db)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Errors generating the demo warehouse.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The output cannot be written.
    #[error("cannot write the demo warehouse at {path}: {source}")]
    Io {
        /// Target path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("cannot write the demo warehouse: {0}")]
    Database(#[from] sqlx::Error),
    /// The scale is outside (0, 10].
    #[error("scale must be greater than 0 and at most 10, got {0}")]
    Scale(f64),
}

/// The most recent Tuesday strictly before `as_of`.
pub fn planted_drop_day(as_of: NaiveDate) -> NaiveDate {
    let mut d = as_of - Duration::days(1);
    while d.weekday() != Weekday::Tue {
        d -= Duration::days(1);
    }
    d
}

/// Generates the demo warehouse at `out` (replacing it atomically: the data is
/// written to a temporary file first, so a failure leaves any old file intact).
///
/// # Errors
/// [`DemoError`] if the scale is out of range or the file cannot be written.
pub async fn generate(out: &Path, as_of: NaiveDate, scale: f64) -> Result<DemoManifest, DemoError> {
    if !(scale > 0.0 && scale <= 10.0) {
        return Err(DemoError::Scale(scale));
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| DemoError::Io {
            path: parent.to_owned(),
            source,
        })?;
    }
    let tmp = out.with_extension("partial");
    let _ = std::fs::remove_file(&tmp);
    let mut w = Writer::create(&tmp).await?;
    let mut g = Generator::new(as_of, scale);
    g.customers(&mut w).await?;
    g.users_before_window(&mut w).await?;
    g.contracts(&mut w).await?;
    g.activity(&mut w).await?;
    g.tickets(&mut w).await?;
    let rows = w.finish().await?;
    std::fs::rename(&tmp, out).map_err(|source| DemoError::Io {
        path: out.to_owned(),
        source,
    })?;
    let manifest = DemoManifest {
        as_of,
        scale,
        planted_drop_on: planted_drop_day(as_of),
        rows,
    };
    let json = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    let manifest_path = DemoManifest::path_for(out);
    std::fs::write(&manifest_path, json).map_err(|source| DemoError::Io {
        path: manifest_path,
        source,
    })?;
    Ok(manifest)
}

#[derive(Clone)]
struct Customer {
    id: i64,
    created: NaiveDate,
    churned: Option<NaiveDate>,
    plan: &'static str,
    mrr: f64,
    weight: f64,
    domain: String,
}

#[derive(Clone)]
struct User {
    id: i64,
    customer: usize,
    signed_up: NaiveDate,
    platform: &'static str,
    country: &'static str,
    propensity: f64,
}

struct Generator {
    rng: ChaCha8Rng,
    as_of: NaiveDate,
    start: NaiveDate,
    scale: f64,
    customers: Vec<Customer>,
    users: Vec<User>,
    next_session: i64,
    next_event: i64,
}

const PLANS: [(&str, f64); 3] = [("starter", 0.55), ("growth", 0.35), ("enterprise", 0.10)];
const REGIONS: [(&str, f64); 4] = [
    ("NA", 0.45),
    ("EMEA", 0.30),
    ("APAC", 0.17),
    ("LATAM", 0.08),
];
const INDUSTRIES: [(&str, f64); 7] = [
    ("software", 0.25),
    ("retail", 0.15),
    ("finance", 0.15),
    ("healthcare", 0.12),
    ("education", 0.1),
    ("media", 0.1),
    ("manufacturing", 0.13),
];
const PLATFORMS: [(&str, f64); 3] = [("web", 0.5), ("ios", 0.32), ("android", 0.18)];
const CHANNELS: [(&str, f64); 5] = [
    ("organic", 0.4),
    ("paid_search", 0.25),
    ("referral", 0.15),
    ("social", 0.12),
    ("partner", 0.08),
];
const COUNTRIES: [(&str, f64); 10] = [
    ("US", 0.38),
    ("GB", 0.1),
    ("DE", 0.09),
    ("FR", 0.06),
    ("IN", 0.09),
    ("BR", 0.06),
    ("CA", 0.06),
    ("AU", 0.05),
    ("JP", 0.05),
    ("NL", 0.06),
];

fn pick<T: Copy>(rng: &mut ChaCha8Rng, table: &[(T, f64)]) -> T {
    let total: f64 = table.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0.0..total);
    for (v, w) in table {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    table[table.len() - 1].0
}

/// Relative activity by weekday (Monday first).
fn weekday_factor(d: NaiveDate) -> f64 {
    [1.0, 1.04, 1.02, 0.98, 0.86, 0.38, 0.33][d.weekday().num_days_from_monday() as usize]
}

fn ts(d: NaiveDate, seconds: i64) -> String {
    let t = d.and_hms_opt(0, 0, 0).unwrap_or_default() + Duration::seconds(seconds);
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

impl Generator {
    fn new(as_of: NaiveDate, scale: f64) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(0x0057_4741_5244),
            as_of,
            start: as_of - Duration::days(HISTORY_DAYS),
            scale,
            customers: Vec::new(),
            users: Vec::new(),
            next_session: 1,
            next_event: 1,
        }
    }

    fn scaled(&self, n: f64) -> usize {
        (n * self.scale).round().max(1.0) as usize
    }

    /// Seconds into a day, mostly in working hours.
    fn time_of_day(&mut self) -> i64 {
        if self.rng.random_bool(0.75) {
            self.rng.random_range(8 * 3600..19 * 3600)
        } else {
            self.rng.random_range(0..86_400)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_drop_is_the_last_tuesday_before_as_of() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(planted_drop_day(d("2026-11-21")), d("2026-11-17"));
        assert_eq!(planted_drop_day(d("2026-11-17")), d("2026-11-10"));
        assert_eq!(planted_drop_day(d("2026-11-18")), d("2026-11-17"));
    }

    #[test]
    fn scale_out_of_range_is_rejected_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.sqlite");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(generate(
                &out,
                NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                0.0,
            ))
            .unwrap_err();
        assert!(matches!(err, DemoError::Scale(_)));
        assert!(!out.exists());
    }
}
