//! The tools the model may use, declared once and offered two ways: as
//! native tool definitions (OpenAI `tools`) and as one JSON Schema for a
//! schema-constrained plan (`response_format: json_schema`), an `anyOf` with
//! one object per tool told apart by a constant `tool` field.
//!
//! The model only proposes an [`Action`]; the agent decides what runs, and
//! every statement goes through the guard.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::llm::{ToolCall, ToolSpec};

/// One step the model proposes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "tool", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Search the documentation.
    SearchDocs {
        /// Search words.
        query: String,
    },
    /// List the metric catalogue.
    ListMetrics {},
    /// Query a named metric through the semantic layer.
    QueryMetric {
        /// Metric name.
        metric: String,
        /// Period in words ("last week", "2026-10-01 to 2026-10-31").
        #[serde(default)]
        period: Option<String>,
        /// Dimension to group by.
        #[serde(default)]
        group_by: Option<String>,
        /// Series grain: day, week, month, quarter or year.
        #[serde(default)]
        grain: Option<String>,
    },
    /// Show a table's readable columns.
    DescribeSchema {
        /// Table name.
        table: String,
    },
    /// Run one SELECT through the guard.
    RunSql {
        /// The statement.
        sql: String,
    },
    /// Decline to answer.
    Refuse {
        /// Why, for the user.
        reason: String,
    },
}

impl Action {
    /// The tool's name.
    pub fn name(&self) -> &'static str {
        match self {
            Action::SearchDocs { .. } => "search_docs",
            Action::ListMetrics {} => "list_metrics",
            Action::QueryMetric { .. } => "query_metric",
            Action::DescribeSchema { .. } => "describe_schema",
            Action::RunSql { .. } => "run_sql",
            Action::Refuse { .. } => "refuse",
        }
    }
}

/// What the model may be offered, given the principal's capabilities and
/// the names it may use.
#[derive(Debug, Clone)]
pub struct Toolbox {
    /// Metric names (an `enum` in the schema).
    pub metrics: Vec<String>,
    /// Readable table names.
    pub tables: Vec<String>,
    /// Whether `run_sql` is offered (the `sql` capability).
    pub sql: bool,
    /// Whether `search_docs` is offered (the asker may read some document).
    pub docs: bool,
    /// Look-up tools already used this turn (`list_metrics`, `search_docs`);
    /// they are not offered again, so a model cannot loop on them.
    pub used: Vec<&'static str>,
}

impl Toolbox {
    /// Records a step: look-ups are offered once (`describe_schema` once per table).
    pub fn record(&mut self, action: &Action) {
        match action {
            Action::ListMetrics {} | Action::SearchDocs { .. } => self.used.push(action.name()),
            Action::DescribeSchema { table } => self.tables.retain(|t| t != table),
            _ => {}
        }
    }
}

impl Toolbox {
    /// The declared tools, in the order the prompt lists them.
    pub fn specs(&self) -> Vec<ToolSpec> {
        let string = json!({"type": "string"});
        let mut specs = Vec::new();
        // An `enum` must not be empty (llama.cpp rejects the whole schema),
        // so a tool whose choices are empty is not offered at all.
        if !self.metrics.is_empty() {
            specs.push(ToolSpec {
            name: "query_metric",
            description: "Query a named metric for a period, optionally grouped by a dimension or a time grain.",
            parameters: object(
                &[
                    ("metric", json!({"type": "string", "enum": self.metrics})),
                    ("period", string.clone()),
                    ("group_by", string.clone()),
                    (
                        "grain",
                        json!({"type": "string", "enum": ["day", "week", "month", "quarter", "year"]}),
                    ),
                ],
                &["metric", "period"],
            ),
        });
        }
        if self.sql {
            specs.push(ToolSpec {
                name: "run_sql",
                description: "Run one read-only SELECT statement over the allowed tables.",
                parameters: object(&[("sql", string.clone())], &["sql"]),
            });
        }
        let lookups = [
            ToolSpec {
                name: "search_docs",
                description: "Search the company documentation.",
                parameters: object(&[("query", string.clone())], &["query"]),
            },
            ToolSpec {
                name: "list_metrics",
                description: "List the metrics with their descriptions and dimensions.",
                parameters: object(&[], &[]),
            },
            ToolSpec {
                name: "describe_schema",
                description: "Show the readable columns of one table.",
                parameters: object(
                    &[("table", json!({"type": "string", "enum": self.tables}))],
                    &["table"],
                ),
            },
        ];
        specs.extend(lookups.into_iter().filter(|s| {
            let empty = match s.name {
                "describe_schema" => self.tables.is_empty(),
                "list_metrics" => self.metrics.is_empty(),
                "search_docs" => !self.docs,
                _ => false,
            };
            !self.used.contains(&s.name) && !empty
        }));
        specs.push(ToolSpec {
            name: "refuse",
            description: "Decline: the data cannot answer the question. Give the reason.",
            parameters: object(&[("reason", string)], &["reason"]),
        });
        specs
    }

    /// The JSON Schema of one plan step: `anyOf` one object per tool, each
    /// with `tool` fixed to the tool's name first.
    pub fn plan_schema(&self) -> Value {
        let variants: Vec<Value> = self
            .specs()
            .into_iter()
            .map(|s| {
                let mut props = serde_json::Map::new();
                props.insert("tool".into(), json!({"const": s.name}));
                let mut required = vec![json!("tool")];
                if let Some(p) = s.parameters["properties"].as_object() {
                    props.extend(p.clone());
                }
                if let Some(r) = s.parameters["required"].as_array() {
                    required.extend(r.iter().cloned());
                }
                json!({
                    "type": "object",
                    "properties": props,
                    "required": required,
                    "additionalProperties": false,
                })
            })
            .collect();
        json!({ "anyOf": variants })
    }
}

fn object(props: &[(&str, Value)], required: &[&str]) -> Value {
    let map: serde_json::Map<String, Value> = props
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    json!({
        "type": "object",
        "properties": map,
        "required": required,
        "additionalProperties": false,
    })
}

/// Reads a JSON-mode plan step. Tolerates a Markdown code fence around it.
///
/// # Errors
/// A one-line reason the model can act on.
pub fn parse_plan(text: &str) -> Result<Action, String> {
    let trimmed = text.trim();
    let body = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|t| t.strip_suffix("```"))
        .unwrap_or(trimmed);
    serde_json::from_str(body.trim()).map_err(|e| format!("the reply is not a valid step: {e}"))
}

/// Reads a native tool call.
///
/// # Errors
/// A one-line reason when the tool is unknown or its arguments malformed.
pub fn parse_call(call: &ToolCall) -> Result<Action, String> {
    let mut args: Value = if call.arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(&call.arguments)
            .map_err(|e| format!("arguments of {} are not JSON: {e}", call.name))?
    };
    let Some(obj) = args.as_object_mut() else {
        return Err(format!("arguments of {} must be an object", call.name));
    };
    obj.insert("tool".into(), Value::String(call.name.clone()));
    serde_json::from_value(args).map_err(|e| format!("bad call to {}: {e}", call.name))
}

/// Removes empty optional strings the model filled in (`"group_by": ""`).
pub fn tidy(action: Action) -> Action {
    let some = |s: Option<String>| s.filter(|v| !v.trim().is_empty());
    match action {
        Action::QueryMetric {
            metric,
            period,
            group_by,
            grain,
        } => Action::QueryMetric {
            metric,
            period: some(period),
            group_by: some(group_by),
            grain: some(grain),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toolbox(sql: bool) -> Toolbox {
        Toolbox {
            metrics: vec!["dau".into()],
            tables: vec!["customers".into()],
            sql,
            docs: true,
            used: Vec::new(),
        }
    }

    #[test]
    fn tools_with_nothing_to_choose_from_are_not_offered() {
        let t = Toolbox {
            metrics: Vec::new(),
            tables: Vec::new(),
            sql: true,
            docs: false,
            used: Vec::new(),
        };
        let names: Vec<_> = t.specs().iter().map(|s| s.name).collect();
        assert_eq!(names, ["run_sql", "refuse"]);
        let schema = t.plan_schema().to_string();
        assert!(!schema.contains("\"enum\":[]"), "{schema}");
        // Every enum anywhere in the schema has at least one choice.
        let full = toolbox(true).plan_schema().to_string();
        assert!(!full.contains("\"enum\":[]"), "{full}");
    }

    #[test]
    fn look_ups_are_offered_once() {
        let mut t = toolbox(true);
        t.record(&Action::ListMetrics {});
        t.record(&Action::DescribeSchema {
            table: "customers".into(),
        });
        let names: Vec<_> = t.specs().iter().map(|s| s.name).collect();
        assert_eq!(names, ["query_metric", "run_sql", "search_docs", "refuse"]);
    }

    #[test]
    fn run_sql_is_offered_only_with_the_sql_capability() {
        let names = |t: &Toolbox| t.specs().iter().map(|s| s.name).collect::<Vec<_>>();
        assert!(names(&toolbox(true)).contains(&"run_sql"));
        assert!(!names(&toolbox(false)).contains(&"run_sql"));
        let schema = toolbox(false).plan_schema().to_string();
        assert!(!schema.contains("run_sql"), "{schema}");
    }

    #[test]
    fn plans_parse_from_json_and_tool_calls_alike() {
        let a = parse_plan("```json\n{\"tool\":\"run_sql\",\"sql\":\"SELECT 1\"}\n```").unwrap();
        assert_eq!(
            a,
            Action::RunSql {
                sql: "SELECT 1".into()
            }
        );
        let b = parse_call(&ToolCall {
            id: "1".into(),
            name: "run_sql".into(),
            arguments: "{\"sql\":\"SELECT 1\"}".into(),
        })
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            parse_call(&ToolCall {
                id: "2".into(),
                name: "list_metrics".into(),
                arguments: String::new(),
            })
            .unwrap(),
            Action::ListMetrics {}
        );
    }

    #[test]
    fn malformed_and_hostile_plans_are_errors_not_actions() {
        for bad in [
            "",
            "SELECT 1",
            "{\"tool\":\"drop_table\",\"table\":\"customers\"}",
            "{\"tool\":\"run_sql\"}",
            "{\"tool\":\"run_sql\",\"sql\":\"SELECT 1\",\"also\":\"DELETE\"}",
            "[{\"tool\":\"list_metrics\"}]",
        ] {
            assert!(parse_plan(bad).is_err(), "{bad:?} parsed");
        }
        let e = parse_call(&ToolCall {
            id: "1".into(),
            name: "run_sql".into(),
            arguments: "[1]".into(),
        })
        .unwrap_err();
        assert!(e.contains("object"), "{e}");
    }

    #[test]
    fn empty_optional_arguments_are_dropped() {
        let a = tidy(
            parse_plan("{\"tool\":\"query_metric\",\"metric\":\"dau\",\"period\":\"last week\",\"group_by\":\" \"}")
                .unwrap(),
        );
        assert!(matches!(a, Action::QueryMetric { group_by: None, .. }));
    }
}
