//! The demo warehouse: a deterministic SQLite database for a fictional B2B
//! SaaS company ("Lumen Analytics"), with 180 days of activity ending the day
//! before the as-of date.
//!
//! Same `(as_of, scale)` → the same database, byte for byte in content: all
//! randomness comes from one ChaCha8 stream with a fixed seed. The most recent
//! Tuesday before the as-of date carries a planted drop in iOS signups, so
//! "why did signups drop last Tuesday?" has a findable answer.

mod people;
pub mod postgres;
mod writer;

use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use writer::{Table, Writer};

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

    async fn customers(&mut self, w: &mut Writer) -> Result<(), DemoError> {
        let n = self.scaled(1500.0).max(60);
        let mut t = Table::new(
            "customers",
            &[
                "customer_id",
                "company_name",
                "contact_name",
                "contact_email",
                "contact_phone",
                "region",
                "plan",
                "industry",
                "created_at",
                "churned_at",
            ],
        );
        for i in 0..n {
            let id = i as i64 + 1;
            // Most customers predate the window; the rest join during it.
            let created = if self.rng.random_bool(0.8) {
                self.start - Duration::days(self.rng.random_range(1..1100))
            } else {
                self.start + Duration::days(self.rng.random_range(0..HISTORY_DAYS - 14))
            };
            let plan = pick(&mut self.rng, &PLANS);
            let churned = if self.rng.random_bool(0.16) {
                let earliest = created.max(self.start) + Duration::days(14);
                let span = (self.as_of - earliest).num_days();
                (span > 0).then(|| earliest + Duration::days(self.rng.random_range(0..span)))
            } else {
                None
            };
            let mrr = match plan {
                "starter" => self.rng.random_range(5..30) as f64 * 10.0 - 1.0,
                "growth" => self.rng.random_range(50..250) as f64 * 10.0,
                _ => self.rng.random_range(40..250) as f64 * 100.0,
            };
            let weight = match plan {
                "starter" => 1.0,
                "growth" => 4.0,
                _ => 14.0,
            };
            let company = people::company_name(&mut self.rng, id);
            let domain = people::domain(&company);
            let (first, last) = people::person(&mut self.rng);
            t.row(vec![
                id.into(),
                company.clone().into(),
                format!("{first} {last}").into(),
                format!("{}.{}@{domain}", first.to_lowercase(), last.to_lowercase()).into(),
                people::phone(&mut self.rng).into(),
                pick(&mut self.rng, &REGIONS).into(),
                plan.into(),
                pick(&mut self.rng, &INDUSTRIES).into(),
                ts(created, self.rng.random_range(9 * 3600..17 * 3600)).into(),
                churned
                    .map(|c| ts(c, self.rng.random_range(0..86_400)))
                    .into(),
            ]);
            self.customers.push(Customer {
                id,
                created,
                churned,
                plan,
                mrr,
                weight,
                domain,
            });
        }
        w.write(t).await
    }

    fn new_user(&mut self, customer: usize, signed_up: NaiveDate) -> User {
        let u = User {
            id: self.users.len() as i64 + 1,
            customer,
            signed_up,
            platform: pick(&mut self.rng, &PLATFORMS),
            country: pick(&mut self.rng, &COUNTRIES),
            propensity: {
                let x: f64 = self.rng.random();
                0.02 + 0.22 * x * x
            },
        };
        self.users.push(u.clone());
        u
    }

    fn user_row(&mut self, u: &User, channel: &'static str, at: String) -> Vec<writer::Value> {
        let (first, last) = people::person(&mut self.rng);
        let domain = self.customers[u.customer].domain.clone();
        vec![
            u.id.into(),
            self.customers[u.customer].id.into(),
            format!("{first} {last}").into(),
            format!(
                "{}.{}{}@{domain}",
                first.to_lowercase(),
                last.to_lowercase(),
                u.id % 97
            )
            .into(),
            u.country.into(),
            u.platform.into(),
            channel.into(),
            at.into(),
        ]
    }

    fn user_table() -> Table {
        Table::new(
            "user_profiles",
            &[
                "user_id",
                "customer_id",
                "full_name",
                "email",
                "country",
                "platform",
                "signup_channel",
                "signed_up_at",
            ],
        )
    }

    /// Users who signed up before the window (the installed base).
    async fn users_before_window(&mut self, w: &mut Writer) -> Result<(), DemoError> {
        let mut t = Self::user_table();
        for c in 0..self.customers.len() {
            let cust = self.customers[c].clone();
            if cust.created >= self.start {
                continue;
            }
            let n = (cust.weight * self.rng.random_range(2.0..4.5)).round() as usize;
            let span = (self.start - cust.created).num_days().max(1);
            for _ in 0..n {
                let d = cust.created + Duration::days(self.rng.random_range(0..span));
                let u = self.new_user(c, d);
                let channel = pick(&mut self.rng, &CHANNELS);
                let at = ts(d, self.time_of_day());
                let row = self.user_row(&u, channel, at);
                t.row(row);
            }
        }
        w.write(t).await
    }

    async fn contracts(&mut self, w: &mut Writer) -> Result<(), DemoError> {
        let mut contracts = Table::new(
            "customer_contracts",
            &[
                "contract_id",
                "customer_id",
                "plan",
                "mrr_usd",
                "started_at",
                "ends_at",
                "status",
            ],
        );
        let mut snapshots = Table::new(
            "customer_mrr_daily",
            &["snapshot_date", "customer_id", "plan", "mrr_usd"],
        );
        let mut invoices = Table::new(
            "billing_history",
            &[
                "invoice_id",
                "customer_id",
                "amount_usd",
                "billed_at",
                "paid_at",
                "status",
            ],
        );
        let mut contract_id = 0i64;
        let mut invoice_id = 0i64;
        for c in self.customers.clone() {
            let end_of_life = c.churned.unwrap_or(self.as_of);
            let mut start = c.created;
            let (mut plan, mut mrr) = (c.plan, c.mrr);
            while start < end_of_life {
                let ends = start + Duration::days(365);
                contract_id += 1;
                let status = if c.churned.is_some_and(|ch| ch < ends) {
                    "cancelled"
                } else if ends <= self.as_of {
                    "ended"
                } else {
                    "active"
                };
                contracts.row(vec![
                    contract_id.into(),
                    c.id.into(),
                    plan.into(),
                    mrr.into(),
                    ts(start, 9 * 3600).into(),
                    ts(ends, 9 * 3600).into(),
                    status.into(),
                ]);
                let live_to = ends.min(end_of_life);
                let mut d = start.max(self.start);
                while d < live_to.min(self.as_of) {
                    snapshots.row(vec![day(d).into(), c.id.into(), plan.into(), mrr.into()]);
                    // Monthly invoice on the contract's day of month.
                    if d.day() == start.day().min(28) {
                        invoice_id += 1;
                        let age = (self.as_of - d).num_days();
                        let roll: f64 = self.rng.random();
                        let (status, paid) = if age < 12 && roll < 0.45 {
                            ("open", None)
                        } else if roll < 0.03 {
                            ("failed", None)
                        } else if roll < 0.04 {
                            (
                                "refunded",
                                Some(d + Duration::days(self.rng.random_range(0..6))),
                            )
                        } else {
                            (
                                "paid",
                                Some(d + Duration::days(self.rng.random_range(0..age.clamp(1, 9)))),
                            )
                        };
                        invoices.row(vec![
                            invoice_id.into(),
                            c.id.into(),
                            mrr.into(),
                            ts(d, 6 * 3600).into(),
                            paid.map(|p| ts(p, self.rng.random_range(8 * 3600..18 * 3600)))
                                .into(),
                            status.into(),
                        ]);
                    }
                    d += Duration::days(1);
                }
                start = ends;
                if self.rng.random_bool(0.25) {
                    mrr = (mrr * 1.2).round();
                    plan = match plan {
                        "starter" if mrr > 400.0 => "growth",
                        "growth" if mrr > 3000.0 => "enterprise",
                        p => p,
                    };
                }
            }
        }
        w.write(contracts).await?;
        w.write(snapshots).await?;
        w.write(invoices).await
    }

    /// Signups, sessions and events, day by day.
    async fn activity(&mut self, w: &mut Writer) -> Result<(), DemoError> {
        let drop_day = planted_drop_day(self.as_of);
        let mut users = Self::user_table();
        let mut sessions = Table::new(
            "sessions",
            &[
                "session_id",
                "user_id",
                "started_at",
                "ended_at",
                "platform",
                "country",
            ],
        );
        let mut events = Table::new(
            "events",
            &[
                "event_id",
                "user_id",
                "session_id",
                "event_name",
                "occurred_at",
            ],
        );
        let weights: Vec<f64> = self.customers.iter().map(|c| c.weight).collect();
        let total_weight: f64 = weights.iter().sum();
        for offset in 0..HISTORY_DAYS {
            let d = self.start + Duration::days(offset);
            let trend = 1.0 + 0.2 * offset as f64 / HISTORY_DAYS as f64;
            // New signups for customers alive that day.
            let expected = 95.0 * self.scale * weekday_factor(d) * trend;
            let n = (expected * self.rng.random_range(0.88..1.12)).round() as usize;
            let mut signed_up_today = Vec::new();
            for _ in 0..n {
                let c = self.pick_customer(&weights, total_weight, d);
                let Some(c) = c else { continue };
                let u = self.new_user(c, d);
                if d == drop_day && u.platform == "ios" && self.rng.random_bool(PLANTED_DROP) {
                    self.users.pop();
                    continue;
                }
                let channel = pick(&mut self.rng, &CHANNELS);
                let at = self.time_of_day();
                let row = self.user_row(&u, channel, ts(d, at));
                users.row(row);
                signed_up_today.push((self.users.len() - 1, at));
            }
            // Sessions of existing users, plus the signup session of new ones.
            let wf = weekday_factor(d);
            for i in 0..self.users.len() {
                let u = &self.users[i];
                let cust = &self.customers[u.customer];
                if u.signed_up >= d || cust.churned.is_some_and(|ch| ch <= d) {
                    continue;
                }
                let p = (u.propensity * wf).min(0.95);
                if self.rng.random_bool(p) {
                    let k = if self.rng.random_bool(0.2) { 2 } else { 1 };
                    for _ in 0..k {
                        let at = self.time_of_day();
                        self.session(i, d, at, false, &mut sessions, &mut events);
                    }
                }
            }
            for (i, at) in signed_up_today {
                self.session(i, d, at, true, &mut sessions, &mut events);
            }
            if events.len() > 60_000 {
                for table in [&mut events, &mut sessions, &mut users] {
                    let empty = table.empty_like();
                    w.write(std::mem::replace(table, empty)).await?;
                }
            }
        }
        w.write(users).await?;
        w.write(sessions).await?;
        w.write(events).await
    }

    fn pick_customer(&mut self, weights: &[f64], total: f64, d: NaiveDate) -> Option<usize> {
        for _ in 0..8 {
            let mut x = self.rng.random_range(0.0..total);
            let mut chosen = weights.len() - 1;
            for (i, w) in weights.iter().enumerate() {
                if x < *w {
                    chosen = i;
                    break;
                }
                x -= w;
            }
            let c = &self.customers[chosen];
            if c.created <= d && c.churned.is_none_or(|ch| ch > d) {
                return Some(chosen);
            }
        }
        None
    }

    fn session(
        &mut self,
        user: usize,
        d: NaiveDate,
        at: i64,
        signup: bool,
        sessions: &mut Table,
        events: &mut Table,
    ) {
        let u = self.users[user].clone();
        let id = self.next_session;
        self.next_session += 1;
        let platform = if u.platform != "web" && self.rng.random_bool(0.3) {
            "web"
        } else {
            u.platform
        };
        let mut t = at;
        let mut names: Vec<&'static str> = Vec::new();
        names.push(if signup { "signup" } else { "login" });
        for _ in 0..self.rng.random_range(2..5) {
            names.push(pick(
                &mut self.rng,
                &[
                    ("page_view", 0.5),
                    ("report_viewed", 0.2),
                    ("dashboard_viewed", 0.18),
                    ("export_csv", 0.07),
                    ("invite_sent", 0.05),
                ],
            ));
        }
        if self.rng.random_bool(0.1) {
            names.push("checkout_started");
            let completion = if platform == "android" { 0.3 } else { 0.42 };
            if self.rng.random_bool(completion) {
                names.push("checkout_completed");
            }
        }
        for name in names {
            events.row(vec![
                self.next_event.into(),
                u.id.into(),
                id.into(),
                name.into(),
                ts(d, t).into(),
            ]);
            self.next_event += 1;
            t += self.rng.random_range(5..240);
        }
        sessions.row(vec![
            id.into(),
            u.id.into(),
            ts(d, at).into(),
            ts(d, t + self.rng.random_range(10..600)).into(),
            platform.into(),
            u.country.into(),
        ]);
    }

    async fn tickets(&mut self, w: &mut Writer) -> Result<(), DemoError> {
        let mut t = Table::new(
            "support_tickets",
            &[
                "ticket_id",
                "customer_id",
                "user_id",
                "opened_at",
                "resolved_at",
                "priority",
                "category",
                "subject",
                "body",
            ],
        );
        let mut id = 0i64;
        let users_by_customer = {
            let mut v = vec![Vec::new(); self.customers.len()];
            for u in &self.users {
                v[u.customer].push(u.id);
            }
            v
        };
        for offset in 0..HISTORY_DAYS {
            let d = self.start + Duration::days(offset);
            let n = (28.0 * self.scale * weekday_factor(d) * self.rng.random_range(0.8..1.2))
                .round() as usize;
            for _ in 0..n {
                let c = self.rng.random_range(0..self.customers.len());
                let Some(&user) = users_by_customer[c].first() else {
                    continue;
                };
                let user = users_by_customer[c]
                    .get(self.rng.random_range(0..users_by_customer[c].len()))
                    .copied()
                    .unwrap_or(user);
                id += 1;
                let priority = pick(
                    &mut self.rng,
                    &[
                        ("low", 0.3),
                        ("normal", 0.45),
                        ("high", 0.2),
                        ("urgent", 0.05),
                    ],
                );
                let category = pick(
                    &mut self.rng,
                    &[
                        ("billing", 0.2),
                        ("bug", 0.3),
                        ("how_to", 0.25),
                        ("account", 0.15),
                        ("feature_request", 0.1),
                    ],
                );
                let median_h = match priority {
                    "urgent" => 3.0,
                    "high" => 9.0,
                    "normal" => 22.0,
                    _ => 40.0,
                };
                let opened = self.time_of_day();
                let hours = median_h * (self.rng.random_range(-1.0f64..1.0) * 1.1).exp();
                let resolved_s = opened + (hours * 3600.0) as i64;
                let resolved_day = d + Duration::seconds(resolved_s);
                let resolved = (resolved_day < self.as_of && self.rng.random_bool(0.97))
                    .then(|| ts(d, resolved_s));
                let (first, last) = people::person(&mut self.rng);
                let email = format!(
                    "{}.{}@{}",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    self.customers[c].domain
                );
                let (subject, body) = people::ticket_text(
                    &mut self.rng,
                    category,
                    &format!("{first} {last}"),
                    &email,
                );
                t.row(vec![
                    id.into(),
                    self.customers[c].id.into(),
                    user.into(),
                    ts(d, opened).into(),
                    resolved.into(),
                    priority.into(),
                    category.into(),
                    subject.into(),
                    body.into(),
                ]);
            }
        }
        w.write(t).await
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
