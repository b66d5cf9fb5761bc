//! Time phrases in questions, resolved against the as-of date ("today").
//!
//! Weeks are ISO weeks (Monday to Sunday). Every range is half-open and ends
//! no later than the as-of date, because there is no data for the future.

use std::sync::LazyLock;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use regex::Regex;

use crate::semantic::period_start;
use crate::semantic::{Grain, TimeRange};

/// A time range found in a question, with the words that named it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FoundRange {
    /// The range.
    pub range: TimeRange,
    /// How to say it ("last week", "Tue 2026-11-17").
    pub label: String,
    /// Byte offset of the phrase in the question, for ordering.
    pub at: usize,
}

pub(super) const WEEKDAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
];

pub(super) const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

static PATTERN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?P<between>(?:between|from)\s+(?P<d1>\d{4}-\d{2}-\d{2})\s+(?:and|to|until|through)\s+(?P<d2>\d{4}-\d{2}-\d{2}))",
        r"|(?P<date>\d{4}-\d{2}-\d{2})",
        r"|(?P<lastn>(?:last|past|previous|trailing)\s+(?P<n>\d{1,3})\s+(?P<unit>days?|weeks?|months?))",
        r"|(?P<weekbeforelast>week\s+before\s+last)",
        r"|(?P<before>(?:the\s+)?(?:week|month|day|period)\s+before(?:\s+that)?|(?:the\s+)?(?:previous|prior|preceding)\s+(?:week|month|period|day)|before\s+that)",
        r"|(?P<rel>(?P<which>last|this|past|previous|current)\s+(?P<span>week|month|quarter|year))",
        r"|(?P<yesterday>yesterday)|(?P<today>today)",
        r"|(?P<wd>(?:last\s+|on\s+|this\s+past\s+)?(?P<wdname>monday|tuesday|wednesday|thursday|friday|saturday|sunday))",
        r"|(?P<month>(?:in\s+)?(?P<mname>january|february|march|april|may|june|july|august|september|october|november|december)(?:\s+(?P<year>\d{4}))?)",
    ))
    .expect("time phrase pattern compiles")
});

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn month_range(year: i32, month: u32) -> Option<TimeRange> {
    let start = NaiveDate::from_ymd_opt(year, month, 1)?;
    let end = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    TimeRange::new(start, end)
}

fn span_range(span: Grain, which: &str, today: NaiveDate) -> Option<TimeRange> {
    let current = period_start(today, span);
    if which == "this" || which == "current" {
        // A period that has just begun has no complete day yet: use its start to today anyway.
        return TimeRange::new(current, today)
            .or_else(|| TimeRange::new(current, today + Duration::days(1)));
    }
    if which == "past" {
        let days = match span {
            Grain::Week => 7,
            Grain::Month => 30,
            Grain::Quarter => 91,
            _ => 365,
        };
        return TimeRange::new(today - Duration::days(days), today);
    }
    let previous = period_start(current - Duration::days(1), span);
    TimeRange::new(previous, current)
}

/// Finds time ranges in a lower-cased question, in order of appearance.
/// Relative phrases ("the week before") resolve against the range found
/// just before them.
pub fn find_ranges(question: &str, today: NaiveDate) -> Vec<FoundRange> {
    find_ranges_after(question, today, None)
}

/// Like [`find_ranges`], but a relative phrase with no range before it in the
/// question ("and the week before?") resolves against `anchor`, the range of
/// the previous turn of a conversation.
pub fn find_ranges_after(
    question: &str,
    today: NaiveDate,
    anchor: Option<TimeRange>,
) -> Vec<FoundRange> {
    let mut out: Vec<FoundRange> = Vec::new();
    for c in PATTERN.captures_iter(question) {
        let m = c
            .get(0)
            .map(|m| (m.start(), m.as_str().trim().to_owned()))
            .unwrap_or_default();
        let (at, text) = m;
        let range = if c.name("between").is_some() {
            let (Some(a), Some(b)) = (
                c.name("d1").and_then(|d| date(d.as_str())),
                c.name("d2").and_then(|d| date(d.as_str())),
            ) else {
                continue;
            };
            TimeRange::new(a.min(b), a.max(b) + Duration::days(1))
        } else if let Some(d) = c.name("date") {
            date(d.as_str()).and_then(|d| TimeRange::new(d, d + Duration::days(1)))
        } else if c.name("lastn").is_some() {
            let n: i64 = c
                .name("n")
                .and_then(|n| n.as_str().parse().ok())
                .unwrap_or(0);
            let unit = c.name("unit").map(|u| u.as_str()).unwrap_or("days");
            // Weeks and months are whole calendar ones, ending where the
            // current (partial) one begins: "the last 4 weeks" is four ISO
            // weeks, not 28 days cutting two of them.
            if unit.starts_with("week") {
                span_range(Grain::Week, "last", today)
                    .and_then(|last| TimeRange::new(last.end - Duration::days(7 * n), last.end))
            } else if unit.starts_with("month") {
                span_range(Grain::Month, "last", today).and_then(|last| {
                    let start = last
                        .end
                        .checked_sub_months(chrono::Months::new(u32::try_from(n).ok()?))?;
                    TimeRange::new(start, last.end)
                })
            } else {
                TimeRange::new(today - Duration::days(n), today)
            }
        } else if c.name("weekbeforelast").is_some() {
            span_range(Grain::Week, "last", today).map(|r| r.previous())
        } else if c.name("before").is_some() {
            match (out.last(), anchor) {
                (Some(prev), _) => Some(prev.range.previous()),
                (None, Some(a)) => Some(a.previous()),
                (None, None) => continue,
            }
        } else if c.name("rel").is_some() {
            let which = c.name("which").map(|w| w.as_str()).unwrap_or("last");
            let span = c
                .name("span")
                .and_then(|s| Grain::parse(s.as_str()))
                .unwrap_or(Grain::Week);
            span_range(span, which, today)
        } else if c.name("yesterday").is_some() {
            TimeRange::new(today - Duration::days(1), today)
        } else if c.name("today").is_some() {
            TimeRange::new(today, today + Duration::days(1))
        } else if let Some(name) = c.name("wdname") {
            let wd = WEEKDAYS
                .iter()
                .find(|(n, _)| *n == name.as_str())
                .map(|(_, w)| *w)
                .unwrap_or(Weekday::Mon);
            let mut d = today - Duration::days(1);
            while d.weekday() != wd {
                d -= Duration::days(1);
            }
            TimeRange::new(d, d + Duration::days(1))
        } else if let Some(name) = c.name("mname")
            && (name.as_str() != "may"
                || c.name("year").is_some()
                || c.get(0).is_some_and(|m| m.as_str().starts_with("in")))
        {
            // "may" is a month only as "in May" or "May 2026", not the verb.
            let month = MONTHS.iter().position(|m| *m == name.as_str()).unwrap_or(0) as u32 + 1;
            let year = c
                .name("year")
                .and_then(|y| y.as_str().parse().ok())
                .unwrap_or_else(|| {
                    if month <= today.month() {
                        today.year()
                    } else {
                        today.year() - 1
                    }
                });
            month_range(year, month)
        } else {
            None
        };
        if let Some(range) = range {
            out.push(FoundRange {
                range,
                label: label_for(&text, range),
                at,
            });
        }
    }
    out
}

fn label_for(text: &str, range: TimeRange) -> String {
    let t = text
        .trim_start_matches("on ")
        .trim_start_matches("in ")
        .trim();
    if range.days() == 1 || t.chars().any(|c| c.is_ascii_digit()) {
        range.to_string()
    } else {
        format!("{t} ({range})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap() // a Saturday
    }

    fn ranges(q: &str) -> Vec<(String, String)> {
        find_ranges(q, today())
            .into_iter()
            .map(|f| (f.range.start.to_string(), f.range.end.to_string()))
            .collect()
    }

    fn r(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn last_week_vs_the_week_before() {
        assert_eq!(
            ranges("what was dau last week vs the week before?"),
            vec![r("2026-11-09", "2026-11-16"), r("2026-11-02", "2026-11-09")]
        );
    }

    #[test]
    fn common_relative_phrases() {
        assert_eq!(ranges("yesterday"), vec![r("2026-11-20", "2026-11-21")]);
        assert_eq!(ranges("last month"), vec![r("2026-10-01", "2026-11-01")]);
        assert_eq!(ranges("last tuesday"), vec![r("2026-11-17", "2026-11-18")]);
        assert_eq!(
            ranges("the last 30 days"),
            vec![r("2026-10-22", "2026-11-21")]
        );
        assert_eq!(ranges("this month"), vec![r("2026-11-01", "2026-11-21")]);
        // Whole calendar weeks (Monday to Sunday) and months.
        assert_eq!(
            ranges("over the last 4 weeks"),
            vec![r("2026-10-19", "2026-11-16")]
        );
        assert_eq!(
            ranges("the past 3 months"),
            vec![r("2026-08-01", "2026-11-01")]
        );
        assert_eq!(ranges("last quarter"), vec![r("2026-07-01", "2026-10-01")]);
        assert_eq!(ranges("in october"), vec![r("2026-10-01", "2026-11-01")]);
        assert_eq!(ranges("in december"), vec![r("2025-12-01", "2026-01-01")]);
        assert_eq!(
            ranges("customers lost in may"),
            vec![r("2026-05-01", "2026-06-01")]
        );
        assert_eq!(ranges("may 2025"), vec![r("2025-05-01", "2025-06-01")]);
        assert!(ranges("what may have caused it").is_empty());
        assert_eq!(
            ranges("week before last"),
            vec![r("2026-11-02", "2026-11-09")]
        );
    }

    #[test]
    fn explicit_dates_and_ranges() {
        assert_eq!(ranges("on 2026-11-03"), vec![r("2026-11-03", "2026-11-04")]);
        assert_eq!(
            ranges("between 2026-10-01 and 2026-10-31"),
            vec![r("2026-10-01", "2026-11-01")]
        );
    }

    #[test]
    fn a_follow_up_resolves_against_the_previous_range() {
        let last_week = TimeRange::new(
            NaiveDate::from_ymd_opt(2026, 11, 9).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 16).unwrap(),
        );
        let found = find_ranges_after("and the week before?", today(), last_week);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].range.start.to_string(), "2026-11-02");
    }

    #[test]
    fn no_phrase_no_range() {
        assert!(ranges("how are we doing").is_empty());
        assert!(ranges("the week before").is_empty());
    }
}
