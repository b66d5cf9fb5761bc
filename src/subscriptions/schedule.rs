//! When a subscription runs: a five-field cron expression (minute, hour,
//! day of month, month, day of week; the syntax of `crontab(5)`, parsed by
//! croner) read in an IANA time zone (chrono-tz), and the few schedule
//! phrases people write in chat ("every Monday at 9:00", "every day at
//! 8am", "every hour"), turned into such an expression.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use regex::Regex;

/// A checked schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    /// Parses `expr` (exactly five fields; seconds are not offered, so a
    /// subscription runs at most once a minute) in time zone `tz`.
    ///
    /// # Errors
    /// A sentence naming what is wrong: the field count, the expression as
    /// croner reports it, or an unknown zone.
    pub fn new(expr: &str, tz: &str) -> Result<Schedule, String> {
        let fields = expr.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "a schedule is five cron fields (minute hour day-of-month month day-of-week), not {fields}"
            ));
        }
        let cron = Cron::from_str(expr).map_err(|e| format!("invalid cron expression: {e}"))?;
        let tz = Tz::from_str(tz.trim()).map_err(|_| {
            format!("unknown time zone {tz:?} (use an IANA name such as Europe/Berlin)")
        })?;
        Ok(Schedule { cron, tz })
    }

    /// The first run strictly after `after`, in UTC; `None` when the
    /// expression never matches again (say, 30 February).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

const DAYS: [(&str, &str); 7] = [
    ("sunday", "0"),
    ("monday", "1"),
    ("tuesday", "2"),
    ("wednesday", "3"),
    ("thursday", "4"),
    ("friday", "5"),
    ("saturday", "6"),
];

static PHRASE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:every|each)\s+(?P<when>hour|day|weekday|morning|(?:sun|mon|tues|wednes|thurs|fri|satur)day|month)(?:\s+at\s+(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>am|pm)?)?",
    )
    .expect("schedule phrase compiles")
});

static LEAD_IN: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(please\s+)?(send|tell|give|email|post|remind)\s+(?:(me|us)|(?P<channel>(?:to\s+|in\s+)?this\s+channel))\s+(about\s+)?",
    )
    .expect("lead-in compiles")
});

/// Whether a subscription request's lead-in names the channel it was asked
/// in ("post this channel …", "send to this channel …") rather than the asker.
pub fn for_channel(message: &str) -> bool {
    LEAD_IN
        .captures(message)
        .is_some_and(|c| c.name("channel").is_some())
}

/// A subscription request in a chat message: a lead-in ("send me", "tell
/// me", "remind me"), a question and a schedule phrase, as a cron
/// expression and the question to re-ask: "Send me weekly active users
/// every Monday at 9:00" → (`0 9 * * 1`, "weekly active users"). Hours
/// default to 9:00. `None` without a lead-in (so "How many signups every
/// day last week?" stays a question), without a phrase, or when the time is
/// not a clock time.
pub fn from_phrase(message: &str) -> Option<(String, String)> {
    let lead = LEAD_IN.find(message)?;
    let message = &message[lead.end()..];
    let caps = PHRASE.captures(message)?;
    let mut hour: u32 = caps
        .name("h")
        .map_or(Some(9), |h| h.as_str().parse().ok())?;
    let minute: u32 = caps
        .name("m")
        .map_or(Some(0), |m| m.as_str().parse().ok())?;
    if let Some(a) = caps.name("ampm").map(|a| a.as_str().to_ascii_lowercase()) {
        if hour == 0 || hour > 12 {
            return None;
        }
        if a == "pm" && hour < 12 {
            hour += 12;
        } else if a == "am" && hour == 12 {
            hour = 0;
        }
    }
    if hour > 23 || minute > 59 {
        return None;
    }
    let when = caps["when"].to_ascii_lowercase();
    let cron = match when.as_str() {
        "hour" => "0 * * * *".to_owned(),
        "day" | "morning" => format!("{minute} {hour} * * *"),
        "weekday" => format!("{minute} {hour} * * 1-5"),
        "month" => format!("{minute} {hour} 1 * *"),
        day => {
            let (_, n) = DAYS.iter().find(|(d, _)| *d == day)?;
            format!("{minute} {hour} * * {n}")
        }
    };
    let whole = caps.get(0)?;
    let rest = format!("{} {}", &message[..whole.start()], &message[whole.end()..]);
    let question = rest
        .trim()
        .trim_end_matches(['.', '!', ','])
        .trim()
        .to_owned();
    (!question.is_empty()).then_some((cron, question))
}

/// A threshold alert asked for in chat: "tell me when checkout conversion
/// falls below 30%".
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRequest {
    /// The words naming the metric ("checkout conversion").
    pub what: String,
    /// Alert when the value is above the threshold (else below).
    pub above: bool,
    /// The number as written (30 for "30%").
    pub number: f64,
    /// Written as a percentage.
    pub percent: bool,
}

static ALERT: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:please\s+)?(?:tell|notify|alert|ping|warn|let)\s+(?:me|us)(?:\s+know)?\s+(?:when|if)\s+(?P<what>.+?)\s+(?:falls?|drops?|goes|rises?|is|gets|climbs?)\s+(?P<cmp>below|under|above|over)\s+(?P<n>\d+(?:\.\d+)?)\s*(?P<pct>%|percent)?\s*[.!?]?\s*$",
    )
    .expect("alert phrase compiles")
});

/// The threshold alert a chat message asks for, if it is one.
pub fn alert_request(message: &str) -> Option<AlertRequest> {
    let caps = ALERT.captures(message)?;
    Some(AlertRequest {
        what: caps["what"].trim().to_owned(),
        above: matches!(caps["cmp"].to_ascii_lowercase().as_str(), "above" | "over"),
        number: caps["n"].parse().ok()?,
        percent: caps.name("pct").is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_runs_follow_the_zone_and_daylight_saving() {
        let monday_nine = Schedule::new("0 9 * * 1", "Europe/Berlin").unwrap();
        // Tue 2026-12-01: next Monday 9:00 in Berlin (UTC+1) is 08:00 UTC.
        assert_eq!(
            monday_nine.next_after(at("2026-12-01T12:00:00Z")).unwrap(),
            at("2026-12-07T08:00:00Z")
        );
        // In summer (UTC+2): 07:00 UTC.
        assert_eq!(
            monday_nine.next_after(at("2026-06-02T12:00:00Z")).unwrap(),
            at("2026-06-08T07:00:00Z")
        );
        // Strictly after: at the run time itself, the next one.
        let daily = Schedule::new("30 6 * * *", "UTC").unwrap();
        assert_eq!(
            daily.next_after(at("2026-12-01T06:30:00Z")).unwrap(),
            at("2026-12-02T06:30:00Z")
        );
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        for (expr, tz, says) in [
            ("* * * *", "UTC", "five cron fields"),
            ("0 0 * * * *", "UTC", "not 6"),
            ("61 * * * *", "UTC", "invalid cron"),
            ("0 9 * * 1", "Mars/Olympus", "unknown time zone"),
            ("0 9 * * 1", "", "unknown time zone"),
        ] {
            let e = Schedule::new(expr, tz).unwrap_err();
            assert!(e.contains(says), "{expr} {tz}: {e}");
        }
    }

    #[test]
    fn alert_phrases_name_a_direction_and_a_threshold() {
        let a = alert_request("Tell me when checkout conversion falls below 30%").unwrap();
        assert_eq!(
            (a.what.as_str(), a.above, a.number, a.percent),
            ("checkout conversion", false, 30.0, true)
        );
        let b = alert_request("let me know if MRR goes over 2500000.").unwrap();
        assert_eq!(
            (b.what.as_str(), b.above, b.number, b.percent),
            ("MRR", true, 2_500_000.0, false)
        );
        for message in [
            "What was checkout conversion last week?",
            "tell me when checkout conversion falls",
            "tell me checkout conversion below 30%",
        ] {
            assert_eq!(alert_request(message), None, "{message}");
        }
    }

    #[test]
    fn chat_phrases_become_cron_and_a_question() {
        for (message, cron, question) in [
            (
                "Send me weekly active users every Monday at 9:00",
                "0 9 * * 1",
                "weekly active users",
            ),
            (
                "send me revenue by plan every day at 8am",
                "0 8 * * *",
                "revenue by plan",
            ),
            (
                "Tell me DAU every weekday at 5:30 pm.",
                "30 17 * * 1-5",
                "DAU",
            ),
            ("remind me about signups every hour", "0 * * * *", "signups"),
            ("Please email me MRR every month", "0 9 1 * *", "MRR"),
            ("send us churn every friday at 12am", "0 0 * * 5", "churn"),
            (
                "post to this channel weekly active users every Monday at 9:00",
                "0 9 * * 1",
                "weekly active users",
            ),
            ("send this channel DAU every day", "0 9 * * *", "DAU"),
        ] {
            assert_eq!(
                from_phrase(message),
                Some((cron.to_owned(), question.to_owned())),
                "{message}"
            );
            assert_eq!(
                for_channel(message),
                message.contains("channel"),
                "{message}"
            );
        }
        for message in [
            "What was DAU last week?",
            "How many signups every day last week?",
            "revenue by plan every day at 8am",
            "send me DAU every Monday at 25:00",
            "send me every Monday at 9",
            "send me DAU every Monday at 13pm",
            "send channel DAU every day",
        ] {
            assert_eq!(from_phrase(message), None, "{message}");
        }
    }
}
