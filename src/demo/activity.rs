//! Day-by-day activity: signups (with the planted drop), sessions, events and support tickets.

use chrono::{Duration, NaiveDate};
use rand::RngExt;

use super::writer::{Table, Writer};
use super::{
    CHANNELS, DemoError, Generator, HISTORY_DAYS, PLANTED_DROP, people, pick, planted_drop_day, ts,
    weekday_factor,
};

impl Generator {
    /// Signups, sessions and events, day by day.
    pub(super) async fn activity(&mut self, w: &mut Writer) -> Result<(), DemoError> {
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

    pub(super) async fn tickets(&mut self, w: &mut Writer) -> Result<(), DemoError> {
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
