//! An [`Answer`] as a Slack message in Block Kit
//! (<https://api.slack.com/reference/block-kit/blocks>): the prose; key numbers
//! as section fields; a compact table (first rows, monospaced); the SQL in a
//! section with `expand: false`, which Slack shows collapsed behind "See more";
//! citations as links in a context block; for refusals the reason and what to
//! ask instead. Text is escaped for mrkdwn (`&`, `<`, `>`), so neither the
//! question, the data nor the model's prose can mention `@channel` or forge
//! links. Slack's limits are respected: 3,000 characters per section text,
//! 10 fields of 2,000, 50 blocks.
//!
//! Output shape: `{"text": fallback, "blocks": [...]}`, the body of
//! `chat.postMessage` / `response_url` minus the channel fields.

use serde_json::{Value, json};

use crate::orchestrator::{Answer, AnswerKind};

/// Rows shown in the compact table.
pub const TABLE_ROWS: usize = 8;
/// Widest cell in the compact table, characters.
const CELL: usize = 32;
/// Longest section text Slack accepts.
const SECTION_MAX: usize = 3000;

/// Escapes text for mrkdwn: `&`, `<`, `>` (Slack's "Escaping text").
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_MAX)}})
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, SECTION_MAX)}]})
}

fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        // Fractions to two places, as a reader wants them in a glance table.
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .map(|f| {
                let s = format!("{f:.2}");
                s.trim_end_matches('0').trim_end_matches('.').to_owned()
            })
            .unwrap_or_default(),
        other => other.to_string(),
    };
    // Inside a code block only the backtick fence and newlines matter.
    clip(&s.replace('`', "'").replace(['\n', '\r'], " "), CELL)
}

/// The first [`TABLE_ROWS`] rows as an aligned, monospaced block.
fn table(answer: &Answer) -> Option<Value> {
    let data = &answer.data;
    if data.rows.is_empty() || data.columns.is_empty() {
        return None;
    }
    let mut grid: Vec<Vec<String>> = vec![data.columns.iter().map(|c| clip(c, CELL)).collect()];
    grid.extend(
        data.rows
            .iter()
            .take(TABLE_ROWS)
            .map(|r| r.iter().map(cell).collect()),
    );
    let widths: Vec<usize> = (0..data.columns.len())
        .map(|i| {
            grid.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let lines: Vec<String> = grid
        .iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect();
    let more = if data.rows.len() > TABLE_ROWS {
        format!("\n_{TABLE_ROWS} of {} rows_", data.rows.len())
    } else {
        String::new()
    };
    // Leave room for the fence and the row note inside Slack's limit.
    let body = clip(&escape(&lines.join("\n")), SECTION_MAX - 40);
    Some(section(&format!("```{body}```{more}")))
}

/// A link in mrkdwn, only for http(s) URLs; `|` and `>` would end the link early.
fn link(url: &str, label: &str) -> String {
    if url.starts_with("https://") || url.starts_with("http://") {
        let url = url
            .replace('|', "%7C")
            .replace('>', "%3E")
            .replace('<', "%3C");
        format!("<{url}|{}>", escape(label).replace('|', "¦"))
    } else {
        escape(label)
    }
}

/// The message for `answer`.
pub fn render(answer: &Answer) -> Value {
    let mut blocks = Vec::new();
    if let Some(i) = &answer.interpretation {
        blocks.push(context(&format!("_{}_", escape(&i.sentence))));
    }
    blocks.push(section(&escape(&answer.answer)));
    if answer.kind == AnswerKind::Refusal {
        if let Some(reason) = &answer.reason {
            blocks.push(context(&format!("*Why:* {}", escape(reason))));
        }
        if !answer.suggestions.is_empty() {
            let tries: Vec<String> = answer
                .suggestions
                .iter()
                .take(5)
                .map(|s| format!("• {}", escape(s)))
                .collect();
            blocks.push(section(&format!("*You could ask:*\n{}", tries.join("\n"))));
        }
    }
    if !answer.key_numbers.is_empty() {
        let fields: Vec<Value> = answer
            .key_numbers
            .iter()
            .take(10)
            .map(|k| {
                json!({"type": "mrkdwn", "text": clip(&format!("*{}*\n{}", escape(&k.label), escape(&k.formatted)), 2000)})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    blocks.extend(table(answer));
    if let Some(sql) = &answer.sql {
        let sql = clip(&escape(&sql.replace("```", "'''")), SECTION_MAX - 20);
        let mut block = section(&format!("*SQL*\n```{sql}```"));
        block["expand"] = json!(false);
        blocks.push(block);
    }
    if let Some(label) = answer.as_of_label() {
        blocks.push(context(&escape(&label)));
    }
    if !answer.citations.is_empty() {
        let cites: Vec<String> = answer
            .citations
            .iter()
            .take(5)
            .map(|c| {
                let label = if c.section.is_empty() {
                    c.title.clone()
                } else {
                    format!("{} › {}", c.title, c.section)
                };
                c.url
                    .as_deref()
                    .map_or_else(|| escape(&label), |u| link(u, &label))
            })
            .collect();
        blocks.push(context(&format!("Sources: {}", cites.join(" · "))));
    }
    if !answer.notes.is_empty() {
        blocks.push(context(&escape(&answer.notes.join(" "))));
    }
    blocks.truncate(49);
    // Feedback buttons, answered at `/slack/interactions`; their value is the
    // question's audit event id.
    if let Some(event) = &answer.event_id {
        let button = |id: &str, text: &str| {
            json!({"type": "button", "action_id": id, "value": event,
                   "text": {"type": "plain_text", "text": text, "emoji": true}})
        };
        blocks.push(
            json!({"type": "actions", "block_id": "feedback", "elements": [
                button(FEEDBACK_UP, "👍 Right"),
                button(FEEDBACK_DOWN, "👎 Wrong"),
            ]}),
        );
    }
    // The fallback text is mrkdwn too (notifications, old clients): escaped as well.
    json!({"text": clip(&escape(&answer.answer), SECTION_MAX), "blocks": blocks})
}

/// The `action_id` of the thumbs-up button under an answer.
pub const FEEDBACK_UP: &str = "feedback_up";
/// The `action_id` of the thumbs-down button under an answer.
pub const FEEDBACK_DOWN: &str = "feedback_down";

/// A plain message (acknowledgements, refusals before any answer).
pub fn notice(text: &str) -> Value {
    json!({"text": escape(text), "blocks": [section(&escape(text))]})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::{Citation, KeyNumber};

    fn sample() -> Answer {
        let mut a = Answer::new(AnswerKind::Sql, "Top <@U123> & friends: <!channel>");
        a.data.columns = vec!["name".into(), "total".into()];
        a.data.rows = (0..20)
            .map(|i| vec![json!(format!("row `{i}`\nnext")), json!(f64::from(i) / 3.0)])
            .collect();
        a.sql = Some("SELECT name, total FROM t WHERE x < 3 -- ```".into());
        a.key_numbers = vec![KeyNumber {
            label: "Revenue".into(),
            value: 1.0,
            formatted: "$1.00".into(),
        }];
        a.citations = vec![Citation {
            id: "a#b".into(),
            source: "a.md".into(),
            url: Some("https://wiki.example.com/a?x=1|y>z".into()),
            title: "Metrics".into(),
            section: "DAU".into(),
            snippet: String::new(),
        }];
        a
    }

    #[test]
    fn answers_render_every_part_escaped_and_within_limits() {
        let msg = render(&sample());
        let blocks = msg["blocks"].as_array().unwrap();
        let text = msg.to_string();
        assert!(
            !text.contains("<!channel>") && !text.contains("<@U123>"),
            "{text}"
        );
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("&lt;!channel&gt;")
        );
        let fields = blocks.iter().find(|b| b.get("fields").is_some()).unwrap();
        assert_eq!(fields["fields"][0]["text"], "*Revenue*\n$1.00");
        let table = blocks
            .iter()
            .map(|b| b["text"]["text"].as_str().unwrap_or_default())
            .find(|t| t.starts_with("```name"))
            .unwrap();
        assert_eq!(table.lines().count(), 1 + TABLE_ROWS + 1, "{table}");
        assert!(table.ends_with(&format!("_{TABLE_ROWS} of 20 rows_")));
        assert_eq!(
            table.matches("```").count(),
            2,
            "cells cannot close the fence"
        );
        let sql = blocks.iter().find(|b| b.get("expand").is_some()).unwrap();
        assert_eq!(sql["expand"], false);
        assert!(sql["text"]["text"].as_str().unwrap().contains("x &lt; 3"));
        let sources = blocks.last().unwrap()["elements"][0]["text"]
            .as_str()
            .unwrap();
        assert_eq!(
            sources,
            "Sources: <https://wiki.example.com/a?x=1%7Cy%3Ez|Metrics › DAU>"
        );
    }

    #[test]
    fn the_interpretation_comes_first_escaped() {
        let mut a = sample();
        a.interpretation = Some(crate::orchestrator::interpret::Interpretation {
            sentence: "I read this as: revenue <by> plan.".into(),
            ..Default::default()
        });
        let msg = render(&a);
        assert_eq!(
            msg["blocks"][0]["elements"][0]["text"],
            "_I read this as: revenue &lt;by&gt; plan._"
        );
        assert_eq!(
            msg["blocks"][1]["text"]["text"],
            render(&sample())["blocks"][0]["text"]["text"]
        );
    }

    #[test]
    fn refusals_show_reason_and_suggestions_and_long_text_is_clipped() {
        let mut a = Answer::refusal("I can't answer that.", "no metric <x>");
        a.suggestions = vec!["What was DAU last week?".into()];
        a.answer = "word ".repeat(2000);
        a.citations.push(Citation {
            id: "x".into(),
            source: "x.md".into(),
            url: Some("javascript:alert(1)".into()),
            title: "X".into(),
            section: String::new(),
            snippet: String::new(),
        });
        let msg = render(&a);
        let blocks = msg["blocks"].as_array().unwrap();
        assert_eq!(
            blocks[0]["text"]["text"].as_str().unwrap().chars().count(),
            SECTION_MAX
        );
        assert_eq!(
            blocks[1]["elements"][0]["text"],
            "*Why:* no metric &lt;x&gt;"
        );
        assert!(
            blocks[2]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("What was DAU")
        );
        assert_eq!(
            blocks.last().unwrap()["elements"][0]["text"],
            "Sources: X",
            "no link for non-http URLs"
        );
        assert_eq!(notice("a <b>")["blocks"][0]["text"]["text"], "a &lt;b&gt;");
    }
}
