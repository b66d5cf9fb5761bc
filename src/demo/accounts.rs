//! Customers, their users before the window, contracts, MRR snapshots and invoices.

use chrono::{Datelike, Duration, NaiveDate};
use rand::RngExt;

use super::writer::{self, Table, Writer};
use super::{
    CHANNELS, COUNTRIES, Customer, DemoError, Generator, HISTORY_DAYS, INDUSTRIES, PLANS,
    PLATFORMS, REGIONS, User, day, people, pick, ts,
};

impl Generator {
    pub(super) async fn customers(&mut self, w: &mut Writer) -> Result<(), DemoError> {
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

    pub(super) fn new_user(&mut self, customer: usize, signed_up: NaiveDate) -> User {
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

    pub(super) fn user_row(
        &mut self,
        u: &User,
        channel: &'static str,
        at: String,
    ) -> Vec<writer::Value> {
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

    pub(super) fn user_table() -> Table {
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
    pub(super) async fn users_before_window(&mut self, w: &mut Writer) -> Result<(), DemoError> {
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

    pub(super) async fn contracts(&mut self, w: &mut Writer) -> Result<(), DemoError> {
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
}
