//! Redaction of personal data from text that leaves a request: log lines
//! (through [`RedactingWriter`]) and the question stored in an audit event.
//!
//! Recognised and replaced by a bracketed kind:
//! - emails → `[email]`;
//! - phone numbers → `[phone]`: international (`+` and 7–15 digits, as in
//!   ITU-T E.164) and North American (`(780) 434-4357`, `780-434-4357`);
//! - payment card numbers → `[card]`: 13–19 digits, spaces or dashes
//!   allowed, passing the Luhn check (ISO/IEC 7812-1 Annex B);
//! - US social security numbers → `[ssn]` (`123-45-6789`);
//! - IBANs → `[iban]`, passing the ISO 13616 mod-97 check;
//! - IPv4 and IPv6 addresses → `[ip]`;
//! - any value read in the current request from a column classed `pii`
//!   ([`remember_pii`], kept per task with [`with_request_scope`]) → `[pii]`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

use regex::Regex;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("redaction pattern compiles")
}

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| re(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"));
static PHONE_INTL: LazyLock<Regex> = LazyLock::new(|| re(r"\+\d[\d\s().-]{5,20}\d"));
static PHONE_NANP: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b"));
static CARD: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d(?:[ -]?\d){12,18}\b"));
static SSN: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{3}-\d{2}-\d{4}\b"));
static IBAN: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b")
});
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|\b(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?\b",
    )
});

/// The Luhn check over the digits of `s` (ISO/IEC 7812-1 Annex B).
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 2 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The ISO 13616 IBAN check: move the first four characters to the end,
/// letters to numbers (A = 10 … Z = 35), the whole mod 97 must be 1.
pub fn iban_valid(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u64 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c.to_digit(36) {
            Some(v) => v as u64,
            None => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn replace_checked<'a>(
    text: Cow<'a, str>,
    re: &Regex,
    label: &str,
    keep: impl Fn(&str) -> bool,
) -> Cow<'a, str> {
    if !re.is_match(&text) {
        return text;
    }
    let replaced = re.replace_all(&text, |c: &regex::Captures<'_>| {
        let m = &c[0];
        if keep(m) {
            label.to_owned()
        } else {
            m.to_owned()
        }
    });
    Cow::Owned(replaced.into_owned())
}

/// `text` with every recognised kind of personal data, and the current
/// request's `pii` values, replaced (borrowed when nothing matched).
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    out = replace_with_request_values(out);
    out = replace_checked(out, &EMAIL, "[email]", |_| true);
    out = replace_checked(out, &IBAN, "[iban]", iban_valid);
    out = replace_checked(out, &CARD, "[card]", luhn);
    out = replace_checked(out, &SSN, "[ssn]", |_| true);
    out = replace_checked(out, &PHONE_INTL, "[phone]", |m| {
        (7..=15).contains(&m.chars().filter(char::is_ascii_digit).count())
    });
    out = replace_checked(out, &PHONE_NANP, "[phone]", |_| true);
    out = replace_checked(out, &IPV4, "[ip]", |_| true);
    replace_checked(out, &IPV6, "[ip]", |m| m.matches(':').count() >= 2)
}

/// Values remembered for one request.
type Values = Arc<Mutex<HashSet<String>>>;

tokio::task_local! {
    static REQUEST_PII: Values;
}

/// Most values remembered per request.
const MAX_VALUES: usize = 10_000;

/// Runs `f` with its own memory of `pii` values (see [`remember_pii`]).
pub async fn with_request_scope<F: std::future::Future>(f: F) -> F::Output {
    REQUEST_PII.scope(Values::default(), f).await
}

/// Remembers values read from `pii` columns in the current request, so logs
/// and the audit trail redact them even where no pattern would. Values of
/// fewer than three characters are not remembered (they would redact common
/// words and numbers). Outside a request scope this does nothing.
pub fn remember_pii<'a>(values: impl IntoIterator<Item = &'a str>) {
    let _ = REQUEST_PII.try_with(|set| {
        if let Ok(mut set) = set.lock() {
            for v in values {
                let v = v.trim();
                if v.chars().count() >= 3 && set.len() < MAX_VALUES {
                    set.insert(v.to_owned());
                }
            }
        }
    });
}

fn replace_with_request_values(text: Cow<'_, str>) -> Cow<'_, str> {
    let values: Vec<String> = REQUEST_PII
        .try_with(|set| {
            set.lock()
                .map(|s| {
                    s.iter()
                        .filter(|v| text.contains(v.as_str()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default();
    if values.is_empty() {
        return text;
    }
    // Longest first, so a value containing another is replaced whole.
    let mut values = values;
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.into_owned();
    for v in values {
        out = out.replace(&v, "[pii]");
    }
    Cow::Owned(out)
}

/// A `tracing_subscriber` writer that redacts everything written through it
/// (each formatted event arrives in one write and is redacted whole).
#[derive(Clone, Debug)]
pub struct RedactingWriter<M>(pub M);

/// One redacting write.
pub struct Redacting<W>(W);

impl<W: std::io::Write> std::io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for RedactingWriter<M>
{
    type Writer = Redacting<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting(self.0.make_writer())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_recognised() {
        let cases = [
            ("mail jane.doe+x@mail.example.com now", "mail [email] now"),
            ("call +55 (12) 3923-5555 today", "call [phone] today"),
            ("call +1-555-555-0142", "call [phone]"),
            ("or (780) 434-4357", "or [phone]"),
            ("or 780-434-4357.", "or [phone]."),
            ("card 4111 1111 1111 1111 ok", "card [card] ok"),
            ("card 4111-1111-1111-1111", "card [card]"),
            ("ssn 123-45-6789", "ssn [ssn]"),
            ("iban GB82 WEST 1234 5698 7654 32 end", "iban [iban] end"),
            ("iban DE89370400440532013000", "iban [iban]"),
            ("from 192.168.10.254:8080", "from [ip]:8080"),
            ("v6 2001:db8::8a2e:370:7334 and fe80::1", "v6 [ip] and [ip]"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn ordinary_log_text_is_left_alone() {
        for ok in [
            "2026-11-22T07:26:03.123456Z INFO steward::http::auth: signed in",
            "dau last week was 182; the week before 187.28571428571428",
            "rows=1000 duration_ms=12 port=8080",
            "card-like but not Luhn 4111 1111 1111 1112",
            "GB82 WEST 1234 5698 7654 33 fails mod 97",
            "version 1.2.3 and 999.1.1.1",
        ] {
            assert_eq!(redact(ok), ok);
        }
    }

    #[test]
    fn checks_follow_their_standards() {
        assert!(luhn("79927398713"));
        assert!(!luhn("79927398710"));
        assert!(luhn("4111111111111111"));
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(!iban_valid("GB82WEST12345698765433"));
        assert!(!iban_valid("GB82"));
    }

    #[tokio::test]
    async fn values_read_from_pii_columns_are_redacted_within_their_request() {
        let inside = with_request_scope(async {
            remember_pii(["Leonie Köhler", "x", "Köhler"]);
            redact("customer Leonie Köhler, aka Köhler; x marks").into_owned()
        })
        .await;
        assert_eq!(inside, "customer [pii], aka [pii]; x marks");
        assert_eq!(
            redact("Leonie Köhler"),
            "Leonie Köhler",
            "other requests are unaffected"
        );
        remember_pii(["outside a scope"]);
    }
}
