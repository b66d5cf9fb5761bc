//! The deterministic planner: maps a question to a plan without a language
//! model, using the metric catalogue, the schema's synonyms and time phrases.
//! It only chooses *what* to compute; every number comes from a query.

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;

use super::timephrase::{FoundRange, find_ranges_after};
use crate::policy::{ColumnClass, Policy};
use std::collections::BTreeMap;

use crate::semantic::{DimensionFilter, Grain, MetricDef, SemanticLayer, TimeRange};

/// What to do for a question.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Query one metric for one or two ranges, optionally by grain or dimension.
    Metric(MetricPlan),
    /// Explain a change: the metric on one day against the same weekday before,
    /// broken down by every dimension.
    Drop {
        /// Metric name.
        metric: String,
        /// The day examined.
        day: TimeRange,
    },
    /// Headline metrics, last 7 days against the 7 before.
    Overview,
    /// List rows of one table.
    List(ListPlan),
    /// Search the documentation.
    Docs,
    /// Refuse, with the reason shown to the user.
    Refuse(String),
    /// The question names a metric but says more than a metric answer
    /// would account for ("average … per customer", "share", "still
    /// open"): answering with the metric alone would answer a different
    /// question. Goes to the model, or becomes a refusal naming the words.
    Unclear {
        /// The nearest metric.
        metric: String,
        /// The question's words no part of a metric answer accounts for.
        words: Vec<String>,
        /// The metric answer the question would get if `words` turn out to
        /// add nothing to its meaning (the orchestrator asks the embedding
        /// model, `meaning.rs`); `None` when a word is known to change it
        /// (a period about another time than the metric's).
        plan: Option<Box<MetricPlan>>,
    },
}

/// A metric question.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricPlan {
    /// Metric name.
    pub metric: String,
    /// One range, or two to compare (first is the focus).
    pub ranges: Vec<FoundRange>,
    /// Series grain, if asked for.
    pub grain: Option<Grain>,
    /// Breakdown dimension, if asked for.
    pub group_by: Option<String>,
    /// Dimension values named in the question ("on iOS", "in EMEA").
    pub filters: Vec<DimensionFilter>,
    /// A ranking of the breakdown ("top 5 countries", "which plan … the
    /// least"): its rows sorted by the metric and cut to `limit`.
    #[serde(default)]
    pub rank: Option<Rank>,
}

/// The order and length of a ranked breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rank {
    /// Largest first (top, most, highest) or smallest first.
    pub descending: bool,
    /// Rows kept.
    pub limit: usize,
}

static RANKING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:(?P<top>top|best|biggest|largest|highest|most)|(?P<bottom>bottom|worst|smallest|lowest|least|fewest))\b(?:\s+(?P<n>\d{1,3})\b)?")
        .expect("ranking pattern compiles")
});

/// Ranking words the planner reads when the question has a breakdown.
const RANK_WORDS: &[&str] = &[
    "top", "best", "biggest", "largest", "highest", "most", "bottom", "worst", "smallest",
    "lowest", "least", "fewest", "rank", "ranked", "ranking",
];

/// A request to list rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPlan {
    /// Table name.
    pub table: String,
    /// Columns to show.
    pub columns: Vec<String>,
    /// The columns the question named (the rest are display defaults).
    pub requested: Vec<String>,
    /// A time column and range to filter on (`None` range: `IS NOT NULL`).
    pub filter: Option<(String, Option<FoundRange>)>,
}

static FORECAST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(estimate|estimated|forecast|forecasting|predict|prediction|projection|project(ed)?\s+(revenue|growth|signups)|extrapolate|guess|benchmarks?|industry\s+(average|standard)|next\s+(week|month|quarter|year)|will\s+(we|it|be))\b")
        .expect("forecast pattern compiles")
});
static OVERVIEW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"how\s+(are|is)\s+(we|things|business|the\s+business|the\s+company)\s+doing|how'?s\s+(business|it\s+going)|\boverview\b|\bkpis?\b|key\s+metrics|headline\s+(metrics|numbers)|state\s+of\s+the\s+business")
        .expect("overview pattern compiles")
});
static WHY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*why\b|what\s+(caused|explains|drove)|reason\s+for|explain\s+the")
        .expect("why pattern compiles")
});
static CHANGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(drop|dropped|fall|fell|decline|declined|dip|dipped|decrease|decreased|down|spike|spiked|jump|jumped|rise|rose|increase|increased|up|change|changed)\b")
        .expect("change pattern compiles")
});
/// Questions about what a figure means or where to look for it ("how is
/// cost per acquisition calculated?", "which dashboard shows revenue by
/// plan?"): words like "per" or "by" inside them name the thing asked
/// about, they do not ask for figures.
const REFERENCE_PATTERN: &str = r"what\s+counts\s+as|what\s+does\s+.+\s+mean|\bdefin(e|ed|ition)\b|how\s+(is|are|do\s+we)\s+.+\s+(calculated|computed|measured|defined)|which\s+dashboard|what\s+dashboard|where\s+(can|do)\s+i";
pub(super) static REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(REFERENCE_PATTERN).expect("reference pattern compiles"));
pub(super) static DOCS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"{REFERENCE_PATTERN}|\brunbook\b|how\s+do\s+i|who\s+owns|what\s+is\s+the\s+(process|policy)|\bpolicy\b|\bsla\b"
    ))
    .expect("docs pattern compiles")
});
pub(super) static LIST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(show|list|give|export|summari[sz]e|display|print|send|who\s+are|names\s+of|records|details|rows|all\s+customer|pull)\b")
        .expect("list pattern compiles")
});
static COMPARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(vs\.?|versus|compared?|comparison|than|change|changed)\b")
        .expect("compare pattern compiles")
});

/// Cardinal number words read as numbers ("the last two weeks" is "the
/// last 2 weeks"). "one" is left alone: it is as often a pronoun ("this
/// one").
const NUMBER_WORDS: &[(&str, &str)] = &[
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
    ("eleven", "11"),
    ("twelve", "12"),
    ("fifteen", "15"),
    ("twenty", "20"),
    ("thirty", "30"),
    ("sixty", "60"),
    ("ninety", "90"),
];

/// Lower-cases and keeps letters, digits, '-', '\'' and spaces, with
/// number words as digits ([`NUMBER_WORDS`]).
pub fn normalize(question: &str) -> String {
    let lowered: String = question
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    lowered
        .split_whitespace()
        .map(|w| {
            NUMBER_WORDS
                .iter()
                .find(|(word, _)| *word == w)
                .map_or(w, |(_, digits)| digits)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    if phrase.is_empty() {
        return false;
    }
    let h = format!(" {haystack} ");
    h.contains(&format!(" {phrase} ")) || h.contains(&format!(" {phrase}s "))
}

/// The metric whose name or synonym is the longest phrase in the question.
pub fn find_metric<'a>(q: &str, layer: &'a SemanticLayer) -> Option<&'a MetricDef> {
    matching_metrics(q, layer)
        .into_iter()
        .max_by_key(|(len, _)| *len)
        .map(|(_, m)| m)
}

/// Every metric a phrase of the question names, with its longest such phrase's length.
fn matching_metrics<'a>(q: &str, layer: &'a SemanticLayer) -> Vec<(usize, &'a MetricDef)> {
    layer
        .metrics()
        .filter_map(|m| {
            m.words()
                .into_iter()
                .filter(|w| contains_phrase(q, w))
                .map(|w| w.len())
                .max()
                .map(|len| (len, m))
        })
        .collect()
}

/// Words a metric answer needs no part of the catalogue to account for:
/// question and function words, and the time (with the month and weekday
/// names of `timephrase`), breakdown and comparison words the planner
/// reads itself. Aggregation and state words
/// ("average", "share", "still", "open", "retention") are deliberately
/// absent: a metric answer does not account for them.
const ACCOUNTED: &[&str] = &[
    // question and function words
    "what",
    "what's",
    "whats",
    "how",
    "many",
    "much",
    "which",
    "who",
    "when",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "the",
    "a",
    "an",
    "of",
    "for",
    "in",
    "on",
    "at",
    "to",
    "from",
    "our",
    "we",
    "us",
    "me",
    "my",
    "i",
    "you",
    "your",
    "show",
    "tell",
    "give",
    "get",
    "got",
    "did",
    "do",
    "does",
    "have",
    "has",
    "had",
    "there",
    "that",
    "this",
    "these",
    "those",
    "with",
    "and",
    "or",
    "it",
    "its",
    "it's",
    "please",
    "can",
    "could",
    "would",
    "see",
    "look",
    "like",
    "all",
    "overall",
    "so",
    "far",
    "number",
    "numbers",
    "value",
    "figure",
    "figures",
    "metric",
    "count",
    "total",
    "stats",
    "statistics",
    "data",
    "report",
    "about",
    "let",
    "know",
    "need",
    "want",
    "quick",
    "same",
    "again",
    // time
    "last",
    "past",
    "previous",
    "prior",
    "current",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "quarter",
    "quarters",
    "year",
    "years",
    "today",
    "yesterday",
    "ago",
    "since",
    "until",
    "through",
    "between",
    "during",
    "before",
    "after",
    "ytd",
    "mtd",
    "qtd",
    "q1",
    "q2",
    "q3",
    "q4",
    "date",
    "period",
    "window",
    "rolling",
    "trailing",
    "weekend",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "first",
    "second",
    "half",
    // breakdown, series and comparison
    "by",
    "per",
    "each",
    "every",
    "across",
    "split",
    "broken",
    "down",
    "breakdown",
    "grouped",
    "group",
    "trend",
    "trends",
    "over",
    "time",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "yearly",
    "annual",
    "series",
    "chart",
    "vs",
    "versus",
    "compared",
    "compare",
    "comparison",
    "against",
    "than",
    "change",
    "changed",
    "difference",
    "up",
    // particles of phrasal verbs ("split out", "broken out", "came back")
    "out",
    "off",
    "back",
    "along",
    "away",
];

/// The question's words that neither [`ACCOUNTED`] nor the metric (its
/// name, label, synonyms and description), its dimensions (names, labels,
/// synonyms) or their known values account for; numbers and dates count
/// as accounted (time phrases, limits).
///
/// Words are compared by stem: singular, and a verb's `-ing`/`-ed` form as
/// its base when that is known ("trending" for "trend", "churned" for
/// "churn"). Two adjacent words whose concatenation is known count as that
/// word ("break down" as "breakdown", "sign ups" as "signups"). A word of
/// what the metric counts (its measures' semantic models, tables and
/// entities) is accounted for when it stands next to a word of the
/// metric's own name ("*support* tickets"), not elsewhere ("how many
/// *invoices*" asks for a count the metric does not give) and not after
/// "per" ("revenue per customer" is a ratio).
fn unexplained_words(q: &str, m: &MetricDef, ctx: &PlanContext) -> Vec<String> {
    let stem = |w: &str| -> String {
        let w = w.trim_matches('\'');
        crate::text::singular(w.strip_suffix("'s").unwrap_or(w))
    };
    let mut known: std::collections::BTreeSet<String> = ACCOUNTED
        .iter()
        .copied()
        .chain(super::timephrase::MONTHS)
        .chain(super::timephrase::WEEKDAYS.iter().map(|(d, _)| *d))
        .map(stem)
        .collect();
    let mut add = |text: &str| {
        for w in normalize(&text.replace('_', " ")).split(' ') {
            for part in w.split('-') {
                known.insert(stem(part));
            }
            known.insert(stem(&w.replace('-', "")));
        }
    };
    for w in m.words() {
        add(&w);
    }
    add(&m.description);
    for d in ctx.layer.dimensions_of(m) {
        for w in d.words() {
            add(&w);
        }
        if let Some(values) = ctx.values.get(&d.name) {
            for v in values {
                add(v);
            }
        }
    }
    let own: std::collections::BTreeSet<String> = m
        .words()
        .iter()
        .flat_map(|w| normalize(w).split(' ').map(stem).collect::<Vec<_>>())
        .collect();
    let mut counted: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for origin in ctx.layer.measure_origins(m) {
        let table = origin
            .table
            .rsplit('.')
            .next()
            .unwrap_or(&origin.table)
            .to_owned();
        for name in [origin.model, table].into_iter().chain(origin.entities) {
            for w in name.split('_').filter(|w| !w.is_empty()) {
                counted.insert(stem(w));
            }
        }
    }
    let is_known = |w: &str| -> bool {
        let s = stem(w);
        if known.contains(&s) {
            return true;
        }
        // A verb's inflection, by its base: "trending", "churned", "moved".
        ["ing", "ed", "d"].iter().any(|suffix| {
            s.strip_suffix(suffix)
                .filter(|base| base.len() >= 3)
                .is_some_and(|base| known.contains(base) || known.contains(&format!("{base}e")))
        })
    };
    let words: Vec<&str> = q.split(' ').collect();
    let mut out: Vec<String> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if w.is_empty() || w.chars().any(|c| c.is_ascii_digit()) {
            continue;
        }
        let parts: Vec<&str> = w.split('-').filter(|p| !p.is_empty()).collect();
        if parts.iter().all(|p| is_known(p)) || is_known(w) {
            continue;
        }
        let joined = |a: &str, b: &str| is_known(&format!("{a}{b}"));
        if (i + 1 < words.len() && joined(w, words[i + 1])) || (i > 0 && joined(words[i - 1], w)) {
            continue;
        }
        let beside_own = [i.checked_sub(1), Some(i + 1)]
            .into_iter()
            .flatten()
            .filter_map(|j| words.get(j))
            .any(|n| own.contains(&stem(n)));
        if counted.contains(&stem(w)) && beside_own && (i == 0 || words[i - 1] != "per") {
            continue;
        }
        if !out.iter().any(|o| o == w) {
            out.push((*w).to_owned());
        }
    }
    out
}

/// Words that stand between a verb and the period it is about ("resolved
/// *in* the last week", "churned *during* October").
const BEFORE_PERIOD: &[&str] = &[
    "in", "on", "during", "over", "for", "since", "within", "from", "the", "this", "of", "at",
];

/// Suffixes of a time column's name after its verb (`resolved_at`,
/// `signup_date`, `shipped_on`): the dbt naming conventions for timestamps.
const TIME_SUFFIXES: &[&str] = &["_at", "_on", "_date", "_time", "_ts", "_timestamp"];

/// A verb's stem for comparing with a column's: lower case, without a past
/// tense or a final `e` (`resolved`, `resolve` → `resolv`).
fn verb_stem(w: &str) -> String {
    let w = w.strip_suffix("ed").unwrap_or(w);
    w.strip_suffix('e').unwrap_or(w).to_owned()
}

/// For each period of the question (a found range) whose preceding verb
/// names a time of the metric's table: the verb as written (one or two
/// words, "signed up") and whether that time is the one the metric is
/// counted by. A time is a time dimension of the measure's semantic model
/// or a column of its table named `<verb>_at`, `_on`, `_date`… (see
/// [`TIME_SUFFIXES`]); `signed_up_at` names "signed up".
fn period_verbs(
    q: &str,
    ranges: &[FoundRange],
    m: &MetricDef,
    ctx: &PlanContext,
) -> Vec<(String, bool)> {
    let mut times: Vec<(String, bool)> = Vec::new();
    for mt in ctx.layer.measure_origins(m) {
        let own_expr = mt
            .time_dimensions
            .iter()
            .find(|(n, _)| *n == mt.agg_time_dimension)
            .map(|(_, e)| e.to_lowercase());
        let mut names: Vec<String> = mt
            .time_dimensions
            .iter()
            .flat_map(|(n, e)| [n.to_lowercase(), e.to_lowercase()])
            .collect();
        let bare = mt.table.rsplit('.').next().unwrap_or(&mt.table).to_owned();
        if let Some(def) = ctx.policy.schema.tables.get(&bare) {
            names.extend(def.columns.keys().cloned());
        }
        for name in names {
            let own =
                name == mt.agg_time_dimension.to_lowercase() || Some(&name) == own_expr.as_ref();
            if let Some(verb) = TIME_SUFFIXES.iter().find_map(|s| name.strip_suffix(s))
                && !verb.is_empty()
            {
                times.push((verb.replace('_', " "), own));
            }
        }
    }
    let mut out: Vec<(String, bool)> = Vec::new();
    for r in ranges {
        let before: Vec<&str> = q[..r.at.min(q.len())].split_whitespace().collect();
        let mut i = before.len();
        while i > 0 && BEFORE_PERIOD.contains(&before[i - 1]) {
            i -= 1;
        }
        if i == 0 {
            continue;
        }
        let one = before[i - 1];
        let two = (i >= 2).then(|| format!("{} {one}", before[i - 2]));
        let matches = |verb: &str, name: &str| {
            let (v, n): (Vec<&str>, Vec<&str>) =
                (verb.split(' ').collect(), name.split(' ').collect());
            v.len() == n.len() && v.iter().zip(&n).all(|(a, b)| verb_stem(a) == verb_stem(b))
        };
        for candidate in two.iter().map(String::as_str).chain([one]) {
            let found: Vec<bool> = times
                .iter()
                .filter(|(name, _)| matches(candidate, name))
                .map(|(_, own)| *own)
                .collect();
            if !found.is_empty() {
                let own = found.iter().any(|o| *o);
                if !out.iter().any(|(v, _)| v == candidate) {
                    out.push((candidate.to_owned(), own));
                }
                break;
            }
        }
    }
    out
}

fn find_grain(q: &str) -> Option<Grain> {
    for (words, grain) in [
        (
            &["by day", "daily", "per day", "each day", "day by day"][..],
            Grain::Day,
        ),
        (
            &["by week", "weekly", "per week", "each week", "week by week"][..],
            Grain::Week,
        ),
        (
            &[
                "by month",
                "monthly",
                "per month",
                "each month",
                "month by month",
            ][..],
            Grain::Month,
        ),
        (
            &["by quarter", "quarterly", "per quarter"][..],
            Grain::Quarter,
        ),
    ] {
        if words.iter().any(|w| contains_phrase(q, w)) {
            return Some(grain);
        }
    }
    None
}

/// A dimension named right after a ranking ("top 5 countries", "which
/// plan had the most …"), for ranked breakdowns without "by".
fn ranked_dimension(q: &str, metric: &MetricDef, layer: &SemanticLayer) -> Option<String> {
    let m = RANKING.find(q)?;
    let dims = layer.dimensions_of(metric);
    let after = &q[m.end()..];
    let before = &q[..m.start()];
    dims.iter()
        .find(|d| {
            d.words().iter().any(|w| {
                let w = w.trim();
                !w.is_empty()
                    && (contains_phrase(after.split(" by ").next().unwrap_or(after), w)
                        || contains_phrase(before, &format!("which {w}"))
                        || contains_phrase(before, &format!("what {w}")))
            })
        })
        .map(|d| d.name.clone())
}

fn find_dimension(q: &str, metric: &MetricDef, layer: &SemanticLayer) -> Option<String> {
    let dims = layer.dimensions_of(metric);
    for lead in [
        "by",
        "per",
        "across",
        "for each",
        "split by",
        "broken down by",
        "breakdown by",
    ] {
        for d in &dims {
            if d.words()
                .iter()
                .any(|w| contains_phrase(q, &format!("{lead} {w}")))
            {
                return Some(d.name.clone());
            }
        }
    }
    None
}

/// What the planner knows besides the question.
pub struct PlanContext<'a> {
    /// What "today" means.
    pub today: NaiveDate,
    /// The access policy (table and column synonyms).
    pub policy: &'a Policy,
    /// Metrics and dimensions.
    pub layer: &'a SemanticLayer,
    /// Known values of public categorical dimensions (the catalogue); a value
    /// named in the question becomes a filter on the metric.
    pub values: &'a BTreeMap<String, Vec<String>>,
}

static FOLLOW_UP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(and|what about|how about|same|now|then|also)\b|\b(that|it|those|these|this one)\b",
    )
    .expect("follow-up pattern compiles")
});

/// Makes a plan for a question. `previous` is the metric plan of the
/// previous turn of the same conversation, if any: a question that names no
/// metric but changes the time range, breakdown, grain or filters of that
/// plan ("and the week before?", "break that down by plan") continues it,
/// and a new metric without a time phrase after "what about …" keeps its range.
pub fn plan(question: &str, ctx: &PlanContext, previous: Option<&MetricPlan>) -> Plan {
    let (today, policy, layer) = (ctx.today, ctx.policy, ctx.layer);
    let q = normalize(question);
    if FORECAST.is_match(&q) {
        return Plan::Refuse(
            "steward reports only figures computed from your own data; it does not estimate, forecast or use outside benchmarks".into(),
        );
    }
    if OVERVIEW.is_match(&q) {
        return Plan::Overview;
    }
    if let Some(p) = saved_query_plan(question, ctx) {
        return Plan::Metric(p);
    }
    let metric = find_metric(&q, layer);
    let anchor = previous.and_then(|p| p.ranges.first()).map(|r| r.range);
    let ranges = find_ranges_after(&q, today, anchor);
    if let Some(m) = metric
        && WHY.is_match(&q)
        && CHANGE.is_match(&q)
    {
        let day = ranges
            .first()
            .map(|r| r.range)
            .filter(|r| r.days() == 1)
            .or_else(|| TimeRange::new(today.pred_opt()?, today))
            .unwrap_or(TimeRange {
                start: today,
                end: today,
            });
        return Plan::Drop {
            metric: m.name.clone(),
            day,
        };
    }
    if let Some(list) = list_plan(&q, policy, &ranges) {
        return Plan::List(list);
    }
    if DOCS.is_match(&q) {
        return Plan::Docs;
    }
    match (metric, previous) {
        (Some(_), previous) => {
            // Of the metrics the question names, the one that leaves the
            // fewest of its words unexplained (then the longest name).
            let (unexplained, m) = matching_metrics(&q, layer)
                .into_iter()
                .map(|(len, m)| (unexplained_words(&q, m, ctx), len, m))
                .min_by(|a, b| a.0.len().cmp(&b.0.len()).then(b.1.cmp(&a.1)))
                .map(|(words, _, m)| (words, m))
                .expect("a metric matched");
            metric_branch(question, &q, m, unexplained, ranges, previous, ctx)
        }
        (None, Some(prev)) => match layer.metric(&prev.metric) {
            Some(m) => {
                let changes = !ranges.is_empty()
                    || find_grain(&q).is_some()
                    || find_dimension(&q, m, layer).is_some()
                    || !find_filters(question, &q, m, layer, ctx.values, None).is_empty();
                if changes && (FOLLOW_UP.is_match(&q) || q.split(' ').count() <= 6) {
                    let inherited = ranges.is_empty().then(|| prev.ranges.clone());
                    Plan::Metric(metric_plan(
                        question,
                        &q,
                        m,
                        ranges,
                        inherited,
                        Some(prev),
                        ctx,
                    ))
                } else {
                    Plan::Docs
                }
            }
            None => Plan::Docs,
        },
        (None, None) => Plan::Docs,
    }
}

/// The metric answer to `question` (normalized `q`) about `m`, or
/// [`Plan::Unclear`] when words are left that the answer does not account
/// for; `unexplained` is [`unexplained_words`] of `q` for `m`.
fn metric_branch(
    question: &str,
    q: &str,
    m: &MetricDef,
    mut unexplained: Vec<String>,
    ranges: Vec<FoundRange>,
    previous: Option<&MetricPlan>,
    ctx: &PlanContext,
) -> Plan {
    let follow_up = previous.is_some() && FOLLOW_UP.is_match(q);
    let inherited = previous
        .filter(|_| ranges.is_empty() && FOLLOW_UP.is_match(q))
        .map(|p| p.ranges.clone());
    let defaulted = ranges.is_empty() && inherited.is_none();
    let mut planned = metric_plan(question, q, m, ranges, inherited, None, ctx);
    if state::apply(&mut planned, q, m, defaulted, ctx) {
        state::account(&mut unexplained);
    }
    // Ranking words are accounted for only by a ranked breakdown.
    let mut unexplained: Vec<String> = unexplained
        .into_iter()
        .filter(|w| !(planned.rank.is_some() && RANK_WORDS.contains(&w.as_str())))
        .collect();
    // A period belongs to the time its verb names ("resolved last
    // week"); a verb naming the metric's own time is accounted for,
    // one naming another time changes the question.
    let mut rescuable = true;
    for (verb, own) in period_verbs(q, &planned.ranges, m, ctx) {
        unexplained.retain(|w| !verb.split(' ').any(|v| v == w));
        if !own {
            unexplained.push(verb);
            rescuable = false;
        }
    }
    if !unexplained.is_empty() && !follow_up {
        return Plan::Unclear {
            metric: m.name.clone(),
            words: unexplained,
            plan: rescuable.then(|| Box::new(planned)),
        };
    }
    Plan::Metric(planned)
}

/// The plan of a saved query whose question this is (same words, any case
/// or punctuation): by its grain, over the last four whole periods (fourteen
/// days by day); without one, over the metric's default window.
fn saved_query_plan(question: &str, ctx: &PlanContext) -> Option<MetricPlan> {
    let saved = ctx
        .layer
        .saved_queries()
        .iter()
        .find(|s| crate::text::same_question(&s.question, question))?;
    let p = saved.plan().ok()?;
    let m = ctx.layer.metric(&p.metric)?;
    // `user__platform` reads as `platform` where that names the same dimension.
    let plain = |d: String| {
        let short = d.rsplit("__").next().unwrap_or(&d).to_owned();
        let same = ctx.layer.qualified_dimension(m, &short) == ctx.layer.qualified_dimension(m, &d);
        if same { short } else { d }
    };
    // By a grain: the last four whole periods (fourteen days by day).
    let range = match p.grain.filter(|g| *g >= Grain::Day) {
        Some(g) => {
            let end = crate::semantic::period_start(ctx.today, g);
            let count = if g == Grain::Day { 14 } else { 4 };
            let start = (0..count).fold(end, |d, _| {
                crate::semantic::period_start(d - chrono::Duration::days(1), g)
            });
            let range = TimeRange { start, end };
            FoundRange {
                range,
                label: format!("the last {count} {}s ({range})", g.as_str()),
                at: 0,
            }
        }
        None => default_range(m, ctx.today),
    };
    Some(MetricPlan {
        metric: m.name.clone(),
        ranges: vec![range],
        grain: p.grain,
        group_by: p.group_by.map(plain),
        filters: p
            .filters
            .into_iter()
            .map(|f| DimensionFilter {
                dimension: plain(f.dimension),
                values: f.values,
            })
            .collect(),
        rank: None,
    })
}

/// A metric's default window ending today (`config.meta.default_window_days`, else 7).
fn default_range(m: &MetricDef, today: chrono::NaiveDate) -> FoundRange {
    let days = i64::from(m.meta().default_window_days.unwrap_or(7));
    let range = TimeRange {
        start: today - chrono::Duration::days(days),
        end: today,
    };
    FoundRange {
        range,
        label: format!("the last {days} days ({range})"),
        at: 0,
    }
}

/// Builds a metric plan; `base` supplies breakdown, grain and filters the
/// question does not change (a follow-up), `inherited` the ranges when the
/// question names none.
fn metric_plan(
    question: &str,
    q: &str,
    m: &MetricDef,
    mut ranges: Vec<FoundRange>,
    inherited: Option<Vec<FoundRange>>,
    base: Option<&MetricPlan>,
    ctx: &PlanContext,
) -> MetricPlan {
    let today = ctx.today;
    if ranges.is_empty() {
        ranges = inherited.unwrap_or_default();
    }
    if ranges.is_empty() {
        ranges.push(default_range(m, today));
    }
    let mut group_by = find_dimension(q, m, ctx.layer)
        .or_else(|| ranked_dimension(q, m, ctx.layer))
        .or_else(|| base.and_then(|b| b.group_by.clone()));
    let mut filters = find_filters(question, q, m, ctx.layer, ctx.values, group_by.as_deref());
    // "Android vs iOS": two values of one dimension compared is a
    // breakdown over those values, not this period against the last.
    let mut values_compared = false;
    if group_by.is_none()
        && COMPARE.is_match(q)
        && let Some(f) = filters.iter().find(|f| f.values.len() >= 2)
    {
        group_by = Some(f.dimension.clone());
        values_compared = true;
    }
    if filters.is_empty() {
        filters = base.map(|b| b.filters.clone()).unwrap_or_default();
    }
    let rank = RANKING
        .captures(q)
        .filter(|_| group_by.is_some())
        .map(|c| Rank {
            descending: c.name("top").is_some(),
            limit: c
                .name("n")
                .and_then(|n| n.as_str().parse().ok())
                .filter(|n| *n > 0)
                // "which plan had the most …" names one; "which industries …" several.
                .unwrap_or_else(|| {
                    let mut words = q.split(' ');
                    let asks_one = matches!(words.next(), Some("which" | "what"))
                        && words.next().is_some_and(|w| !w.ends_with('s'));
                    if asks_one { 1 } else { 5 }
                }),
        });
    if ranges.len() == 1 && COMPARE.is_match(q) && !values_compared {
        let prev = ranges[0].range.previous();
        ranges.push(FoundRange {
            range: prev,
            label: format!("the period before ({prev})"),
            at: usize::MAX,
        });
    }
    ranges.truncate(2);
    let grain = find_grain(q)
        .or_else(|| {
            (q.contains("trend") || q.contains("over time")).then(|| {
                if ranges[0].range.days() > 62 {
                    Grain::Week
                } else {
                    Grain::Day
                }
            })
        })
        .or_else(|| base.and_then(|b| b.grain));
    MetricPlan {
        metric: m.name.clone(),
        ranges,
        grain,
        group_by,
        filters,
        rank,
    }
}

/// Common words never read as (case-insensitive) dimension values.
const NOT_VALUES: &[&str] = &["the", "and", "all", "any", "none", "other", "for", "new"];

/// Dimension values named in the question. Values of one or two letters
/// (country codes) must appear in the question exactly as stored ("US"),
/// longer ones match case-insensitively as whole words ("iOS" → `ios`).
fn find_filters(
    original: &str,
    normalized: &str,
    metric: &MetricDef,
    layer: &SemanticLayer,
    values: &BTreeMap<String, Vec<String>>,
    group_by: Option<&str>,
) -> Vec<DimensionFilter> {
    let words: Vec<&str> = original
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .collect();
    let mut filters = Vec::new();
    for dim in layer.dimensions_of(metric) {
        if group_by == Some(dim.name.as_str()) {
            continue;
        }
        let Some(known) = values.get(&dim.name) else {
            continue;
        };
        let named: Vec<String> = known
            .iter()
            .filter(|v| {
                if v.chars().count() <= 2 {
                    words.contains(&v.as_str())
                } else if NOT_VALUES.contains(&v.to_lowercase().as_str()) {
                    false
                } else {
                    contains_phrase(normalized, &v.to_lowercase().replace('_', " "))
                        || contains_phrase(normalized, &v.to_lowercase())
                }
            })
            .cloned()
            .collect();
        if !named.is_empty() {
            filters.push(DimensionFilter {
                dimension: dim.name.clone(),
                values: named,
            });
        }
    }
    filters
}

/// A listing request: a list verb, a table named by a synonym, and either a
/// column of it or the word "records"/"all".
fn list_plan(q: &str, policy: &Policy, ranges: &[FoundRange]) -> Option<ListPlan> {
    if !LIST.is_match(q) {
        return None;
    }
    let (table, def) = policy
        .schema
        .tables
        .iter()
        .filter_map(|(t, d)| {
            let best = d
                .synonyms
                .iter()
                .chain(std::iter::once(t))
                .filter(|s| contains_phrase(q, s))
                .map(|s| s.len())
                .max()?;
            Some((best, t, d))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, t, d)| (t, d))?;
    let mut requested: Vec<String> = Vec::new();
    let mut time_column = None;
    // Longest synonyms first so "email addresses" wins over "email".
    let mut synonyms: Vec<(&String, &String)> = def
        .columns
        .iter()
        .flat_map(|(c, d)| d.synonyms.iter().map(move |s| (s, c)))
        .collect();
    synonyms.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    for (syn, col) in synonyms {
        if contains_phrase(q, syn) && !requested.contains(col) {
            if col.ends_with("_at") {
                time_column.get_or_insert_with(|| col.clone());
            } else {
                requested.push(col.clone());
            }
        }
    }
    let wants_all = q.contains("record") || q.contains(" all ") || q.starts_with("list");
    if requested.is_empty() && !wants_all {
        return None;
    }
    // A schema without display columns (one `policy init` wrote) shows its
    // first non-personal columns.
    let display: Vec<String> = if def.display.is_empty() {
        def.columns
            .iter()
            .filter(|(_, c)| c.class != ColumnClass::Pii)
            .map(|(n, _)| n.clone())
            .take(6)
            .collect()
    } else {
        def.display.clone()
    };
    let mut columns: Vec<String> = display
        .iter()
        .filter(|c| !c.ends_with("_at"))
        .take(3)
        .cloned()
        .collect();
    if wants_all {
        columns = display;
    }
    for c in &requested {
        if !columns.contains(c) {
            columns.push(c.clone());
        }
    }
    // Keep the most identifying public or sensitive column first.
    columns.sort_by_key(|c| {
        def.columns
            .get(c)
            .map(|d| d.class == ColumnClass::Pii)
            .unwrap_or(false)
    });
    if let Some(t) = &time_column
        && !columns.contains(t)
    {
        columns.push(t.clone());
    }
    let filter = time_column.map(|c| (c, ranges.first().cloned()));
    Some(ListPlan {
        table: table.clone(),
        columns,
        requested,
        filter,
    })
}

mod call;
#[cfg(test)]
mod tests;

pub use call::metric_call;
mod state;
