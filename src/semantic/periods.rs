//! Calendar periods for grains: where a period starts and which periods a
//! range covers (weeks are ISO weeks starting Monday).

use chrono::{Datelike, Duration, NaiveDate};

use super::{Grain, TimeRange};

pub(super) fn grain_adjective(g: Grain) -> &'static str {
    match g {
        Grain::Second => "per-second",
        Grain::Minute => "per-minute",
        Grain::Hour => "hourly",
        Grain::Day => "daily",
        Grain::Week => "weekly",
        Grain::Month => "monthly",
        Grain::Quarter => "quarterly",
        Grain::Year => "yearly",
    }
}

/// `(first day, last day)` of each `grain` period overlapping `range`, clipped to it.
pub(super) fn periods(range: TimeRange, grain: Grain) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut day = range.start;
    while day < range.end {
        let start = period_start(day, grain);
        let next = next_period_start(day, grain);
        let last = next.pred_opt().unwrap_or(next).min(range.last_day());
        out.push((start, last));
        day = next;
    }
    out
}

/// The first day of the `grain` period after the one containing `d`.
pub(super) fn next_period_start(d: NaiveDate, grain: Grain) -> NaiveDate {
    let step = match grain {
        Grain::Second | Grain::Minute | Grain::Hour | Grain::Day => 1,
        Grain::Week => 7,
        Grain::Month => 32,
        Grain::Quarter => 93,
        Grain::Year => 367,
    };
    period_start(period_start(d, grain) + Duration::days(step), grain)
}

/// The first day of the `grain` period containing `d` (weeks start Monday;
/// a day for grains shorter than a day).
pub fn period_start(d: NaiveDate, grain: Grain) -> NaiveDate {
    match grain {
        Grain::Second | Grain::Minute | Grain::Hour | Grain::Day => d,
        Grain::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
        Grain::Month => d.with_day(1).unwrap_or(d),
        Grain::Quarter => {
            NaiveDate::from_ymd_opt(d.year(), (d.month0() / 3) * 3 + 1, 1).unwrap_or(d)
        }
        Grain::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d),
    }
}
