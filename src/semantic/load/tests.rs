//! Loader tests: file forms, dbt constructs read or refused at their line,
//! time spines, saved queries and the manifest.

use super::*;

fn schema() -> Schema {
    serde_yaml_ng::from_str(
        "tables:\n  t:\n    columns:\n      id: {class: public}\n      ts: {class: public}\n      v: {class: public}\n",
    )
    .unwrap()
}

const MODEL: &str = "semantic_models:\n  - name: m\n    model: ref('t')\n    defaults: {agg_time_dimension: ts}\n    entities: [{name: x, type: primary, expr: id}]\n    dimensions:\n      - {name: ts, type: time}\n    measures:\n      - {name: total, agg: sum, expr: v}\n";

fn load(text: &str) -> Result<SemanticLayer, PolicyError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yml"), text).unwrap();
    SemanticLayer::load(dir.path(), &schema())
}

#[test]
fn a_valid_file_loads() {
    let s = load(&format!(
        "{MODEL}metrics:\n  - name: t\n    type: simple\n    type_params: {{measure: total}}\n"
    ))
    .unwrap();
    assert!(s.metric("t").is_some());
}

#[test]
fn unknown_measure_is_reported_at_the_metric_line() {
    let err = load(&format!(
        "{MODEL}metrics:\n  - name: bad\n    type: simple\n    type_params: {{measure: nope}}\n"
    ))
    .unwrap_err();
    // The line that names the missing measure, inside the metric.
    assert_eq!(err.line, Some(13), "{err}");
    assert!(err.reason.contains("nope"), "{err}");
}

#[test]
fn table_outside_the_allow_list_is_rejected() {
    let err = load(&MODEL.replace("ref('t')", "ref('secrets')")).unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
    assert!(err.reason.contains("schema.yaml does not list"), "{err}");
}

#[test]
fn bad_agg_is_a_yaml_error_with_a_line() {
    let err = load(&MODEL.replace("agg: sum", "agg: total")).unwrap_err();
    assert_eq!(err.line, Some(9), "{err}");
}

const METRIC: &str = "metrics:\n  - name: t\n    type: simple\n    type_params: {measure: total}\n";

#[test]
fn several_documents_in_one_file_load_and_errors_keep_their_line() {
    let s = load(&format!("{MODEL}---\n{METRIC}")).unwrap();
    assert!(s.metric("t").is_some());
    // Line 14 is `type_params` of the second document's metric.
    let err = load(&format!("{MODEL}---\n{}", METRIC.replace("total", "nope"))).unwrap_err();
    assert_eq!(err.line, Some(14), "{err}");
    let err = load(&format!(
        "---\n{MODEL}---\n{}",
        METRIC.replace("simple", "simpel")
    ))
    .unwrap_err();
    assert_eq!(err.line, Some(14), "{err}");
    assert!(err.reason.contains("simpel"), "{err}");
}

#[test]
fn node_relation_names_the_table() {
    let text = MODEL.replace(
        "model: ref('t')",
        "node_relation: {alias: t, schema_name: analytics, database: prod, relation_name: '\"prod\".\"analytics\".\"t\"'}",
    );
    let s = load(&format!("{text}{METRIC}")).unwrap();
    assert_eq!(s.models()[0].table(), "t");
    let err = load(&MODEL.replace("    model: ref('t')\n", "")).unwrap_err();
    assert!(err.reason.contains("names no table"), "{err}");
}

#[test]
fn unknown_keys_are_errors_at_their_line() {
    let err = load(&MODEL.replace("agg: sum", "agg: sum, agregation: x")).unwrap_err();
    assert_eq!(err.line, Some(9), "{err}");
    assert!(err.reason.contains("agregation"), "{err}");
    let err = load(&format!(
        "{MODEL}{}",
        METRIC.replace("type: simple", "type: simple\n    typo: 1")
    ))
    .unwrap_err();
    assert_eq!(err.line, Some(13), "{err}");
}

/// Every construct of dbt's schema steward does not support yet is a
/// load error naming the feature, at the line that uses it.
#[test]
fn unsupported_constructs_are_named_at_their_line() {
    // Metric `t`, then the metric `u` under test, whose body starts at line 15.
    let metric = |body: &str| format!("{MODEL}{METRIC}  - name: u\n{body}");
    let cases: Vec<(String, &str, usize)> = vec![
        (
            metric("    type: conversion\n    type_params:\n      conversion_type_params: {entity: x, base_metric: t, conversion_metric: t}\n"),
            "conversion over metrics",
            17,
        ),
        (
            metric("    type: derived\n    type_params:\n      expr: t\n      metrics:\n        - {name: t, offset_window: 2 hours}\n"),
            "offset shorter than a day",
            19,
        ),
        (
            metric("    type: derived\n    type_params:\n      expr: t\n      metrics:\n        - {name: t, fill_nulls_with: 0}\n"),
            "fill_nulls_with",
            19,
        ),
        (
            metric("    type: simple\n    type_params:\n      measure: total\n      is_private: true\n"),
            "private",
            18,
        ),
        (
            metric("    type: simple\n    type_params:\n      metric_aggregation_params: {agg: sum, semantic_model: m}\n"),
            "own aggregation",
            17,
        ),
        (
            MODEL.replace("{name: ts, type: time}", "{name: ts, type: time, type_params: {time_granularity: day, validity_params: {is_start: true}}}"),
            "slowly changing",
            7,
        ),
        (
            MODEL.replace("expr: v}", "expr: v, non_additive_dimension: {name: ts, window_choice: max, window_groupings: [x]}}"),
            "window groupings",
            9,
        ),
        (
            MODEL.replace("type: primary, expr: id", "type: primary, expr: id, role: owner"),
            "entity role",
            5,
        ),
        (
            MODEL.replace("{name: ts, type: time}", "{name: ts, type: time, type_params: {time_granularity: nanosecond}}"),
            "sub-second",
            7,
        ),
        (
            MODEL.replace("{name: ts, type: time}", "{name: ts, type: time, type_params: {time_granularity: fiscal_quarter}}"),
            "custom granularities",
            7,
        ),
    ];
    for (text, feature, line) in cases {
        let err = load(&text).expect_err(feature);
        assert!(err.reason.contains(feature), "{feature}: {err}");
        assert_eq!(err.line, Some(line), "{feature}: {err}\n{text}");
    }
}

#[test]
fn fills_and_offsets_load_where_dbt_allows_them() {
    let ok = format!(
        "{MODEL}{METRIC}  - name: filled\n    type: simple\n    type_params:\n      measure: {{name: total, fill_nulls_with: 0, join_to_timespine: true}}\n  - name: wow\n    type: derived\n    type_params:\n      expr: t - prev\n      metrics:\n        - t\n        - {{name: t, offset_window: 1 week, alias: prev}}\n        - {{name: t, offset_to_grain: month, alias: start}}\n"
    );
    let s = load(&ok).unwrap();
    assert!(s.metric("wow").is_some() && s.metric("filled").is_some());
    for (bad, why) in [
        (
            "  - name: r\n    type: ratio\n    type_params: {numerator: {name: t, offset_window: 1 week}, denominator: t}\n",
            "derived metric's inputs",
        ),
        (
            "  - name: r\n    type: derived\n    type_params: {expr: t, metrics: [{name: t, offset_window: 1 week, offset_to_grain: month}]}\n",
            "not both",
        ),
        (
            "  - name: r\n    type: derived\n    type_params: {expr: t, metrics: [{name: t, offset_to_grain: fortnight}]}\n",
            "offset_to_grain",
        ),
        (
            "  - name: r\n    type: ratio\n    type_params: {numerator: t, denominator: t, fill_nulls_with: 0}\n",
            "simple metrics",
        ),
    ] {
        let err = load(&format!("{MODEL}{METRIC}{bad}")).unwrap_err();
        assert!(err.reason.contains(why), "{why}: {err}");
    }
}

#[test]
fn custom_granularities_come_from_an_allow_listed_time_spine() {
    let schema: Schema = serde_yaml_ng::from_str(
        "tables:\n  t:\n    columns:\n      id: {class: public}\n      ts: {class: public}\n      v: {class: public}\n  spine:\n    columns:\n      d: {class: public}\n      fq: {class: public}\n",
    )
    .unwrap();
    let spine = |custom: &str| {
        format!(
            "{MODEL}{METRIC}models:\n  - name: spine\n    time_spine:\n      standard_granularity_column: d\n      custom_granularities: [{custom}]\n    columns:\n      - {{name: d, granularity: day}}\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let load_with = |text: String| {
        std::fs::write(dir.path().join("a.yml"), text).unwrap();
        SemanticLayer::load(dir.path(), &schema)
    };
    let s = load_with(spine("{name: fiscal_quarter, column_name: fq}")).unwrap();
    let (t, c) = s.custom_grain("Fiscal_Quarter").unwrap();
    assert_eq!(
        (t.table.as_str(), t.day_column.as_str(), c.column.as_str()),
        ("spine", "d", "fq")
    );
    let mut q = super::super::MetricQuery {
        metric: "t".into(),
        range: super::super::TimeRange::new(
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
        )
        .unwrap(),
        grain: None,
        custom_grain: Some("fiscal_quarter".into()),
        group_by: vec![],
        filters: vec![],
    };
    let sql = s.compile(&q, crate::sql::Dialect::Sqlite).unwrap().sql;
    assert!(
        sql.contains("sp.fq AS period")
            && sql.contains("LEFT JOIN spine AS sp ON sp.d = date(m0.ts)"),
        "{sql}"
    );
    q.grain = Some(Grain::Month);
    assert!(
        s.compile(&q, crate::sql::Dialect::Sqlite).is_err(),
        "a grain and a custom granularity"
    );
    for (custom, why) in [
        ("{name: fiscal_quarter, column_name: nope}", "column nope"),
        ("{name: month, column_name: fq}", "standard grain"),
    ] {
        let err = load_with(spine(custom)).unwrap_err();
        assert!(err.reason.contains(why), "{why}: {err}");
    }
    // Not allow-listed: an error naming schema.yaml.
    let err = load(&spine("{name: fiscal_quarter, column_name: fq}")).unwrap_err();
    assert!(err.reason.contains("schema.yaml does not list"), "{err}");
    assert_eq!(err.line, Some(15), "{err}");
}

#[test]
fn percentiles_need_their_parameters() {
    let bad = MODEL.replace("agg: sum", "agg: percentile");
    assert!(
        load(&bad)
            .unwrap_err()
            .reason
            .contains("agg_params.percentile")
    );
    let out_of_range = MODEL.replace("agg: sum", "agg: percentile, agg_params: {percentile: 90}");
    assert!(load(&out_of_range).is_err());
    let ok = MODEL.replace(
        "agg: sum",
        "agg: PERCENTILE, agg_params: {percentile: 0.9, use_discrete_percentile: true}",
    );
    load(&format!("{ok}{METRIC}")).unwrap();
}

#[test]
fn approximate_percentiles_compile_only_where_the_warehouse_has_them() {
    let text = MODEL.replace(
        "agg: sum",
        "agg: percentile, agg_params: {percentile: 0.9, use_approximate_percentile: true}",
    );
    let s = load(&format!("{text}{METRIC}")).unwrap();
    let end = chrono::NaiveDate::from_ymd_opt(2026, 11, 16).unwrap();
    let q = super::super::MetricQuery {
        metric: "t".into(),
        range: super::super::TimeRange::new(end - chrono::Duration::days(7), end).unwrap(),
        grain: None,
        custom_grain: None,
        group_by: vec![],
        filters: vec![],
    };
    let snowflake = s.compile(&q, crate::sql::Dialect::Snowflake).unwrap();
    assert!(
        snowflake
            .sql
            .contains("APPROX_PERCENTILE(measure_value, 0.9)"),
        "{}",
        snowflake.sql
    );
    for d in [crate::sql::Dialect::Postgres, crate::sql::Dialect::Sqlite] {
        let err = s.compile(&q, d).unwrap_err().to_string();
        assert!(
            err.contains("approximate percentile needs Snowflake"),
            "{d}: {err}"
        );
    }
}

#[test]
fn create_metric_defines_a_simple_metric() {
    let text = MODEL.replace(
        "agg: sum, expr: v",
        "agg: count, expr: 1, create_metric: true, create_metric_display_name: Rows",
    );
    let s = load(&text).unwrap();
    let m = s.metric("total").expect("created");
    assert_eq!(m.label(), "Rows");
    assert_eq!(m.measure_name(), Some("total"));
}

#[test]
fn saved_queries_are_checked() {
    let saved = |params: &str| {
        format!(
            "{MODEL}{METRIC}saved_queries:\n  - name: s\n    label: Totals by week\n    query_params:\n{params}"
        )
    };
    let s = load(&saved(
        "      metrics: [t]\n      group_by: [\"TimeDimension('metric_time', 'week')\"]\n",
    ))
    .unwrap();
    let q = &s.saved_queries()[0];
    assert_eq!(
        (q.question.as_str(), q.grain),
        ("Totals by week", Some(Grain::Week))
    );
    for (params, why) in [
        ("      metrics: [nope]\n", "nope"),
        (
            "      metrics: [t]\n      group_by: [\"Dimension('x__colour')\"]\n",
            "colour",
        ),
        (
            "      metrics: [t]\n      where: [\"{{ Metric('t', ['x']) }} > 1\"]\n",
            "Metric",
        ),
    ] {
        let err = load(&saved(params)).unwrap_err();
        assert!(err.reason.contains(why), "{why}: {err}");
    }
}

#[test]
fn a_manifest_with_nulls_loads() {
    let manifest = r#"{"semantic_models": [{"name": "m", "description": null, "node_relation": {"alias": "t", "schema_name": "s", "database": null, "relation_name": "s.t"},
        "primary_entity": null, "label": null, "metadata": null, "config": {"meta": {}},
        "defaults": {"agg_time_dimension": "ts"},
        "entities": [{"name": "x", "type": "primary", "expr": "id", "description": null, "role": null, "label": null, "metadata": null, "config": {"meta": {}}}],
        "dimensions": [{"name": "ts", "type": "time", "is_partition": false, "type_params": {"time_granularity": "day", "validity_params": null}, "expr": null, "metadata": null, "label": null, "description": null, "config": {"meta": {}}}],
        "measures": [{"name": "total", "agg": "sum", "expr": "v", "description": null, "create_metric": false, "agg_params": null, "metadata": null, "non_additive_dimension": null, "agg_time_dimension": null, "label": null, "config": {"meta": {}}}]}],
      "metrics": [{"name": "t", "description": null, "type": "cumulative", "label": "T", "filter": {"where_filters": [{"where_sql_template": "{{ Dimension('x__ts') }} IS NOT NULL"}]}, "metadata": null, "config": {"meta": {"synonyms": ["tee"]}}, "time_granularity": null,
        "type_params": {"measure": {"name": "total", "filter": null, "alias": null, "join_to_timespine": false, "fill_nulls_with": null}, "numerator": null, "denominator": null, "expr": null, "window": null, "grain_to_date": null, "metrics": [], "conversion_type_params": null,
          "cumulative_type_params": {"window": {"count": 7, "granularity": "day"}, "grain_to_date": null, "period_agg": "last"}, "input_measures": []}}],
      "project_configuration": {"time_spine_table_configurations": [], "metadata": null, "dsi_package_version": {}, "time_spines": []},
      "saved_queries": []}"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("semantic_manifest.json");
    std::fs::write(&path, manifest).unwrap();
    let s = SemanticLayer::load_from(&SemanticSource::Manifest(path.clone()), &schema()).unwrap();
    let t = s.metric("t").unwrap();
    assert_eq!(t.type_params.cumulative_window().map(|w| w.count), Some(7));
    assert_eq!(t.type_params.period_agg(), crate::semantic::PeriodAgg::Last);
    assert_eq!(t.filter.0.len(), 1);
    assert_eq!(t.words(), vec!["t", "t", "tee"]);
    std::fs::write(
        &path,
        manifest.replace("\"saved_queries\"", "\"sav_queries\""),
    )
    .unwrap();
    let err = SemanticLayer::load_from(&SemanticSource::Manifest(path), &schema()).unwrap_err();
    assert!(err.reason.contains("sav_queries"), "{err}");
}

#[test]
fn a_dbt_project_is_read_under_its_model_paths() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dbt_project.yml"),
        "name: p\nmodel-paths: [\"src\"]\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("src/marts/semantic")).unwrap();
    std::fs::write(
        dir.path().join("src/marts/semantic/m.yml"),
        format!("version: 2\n{MODEL}"),
    )
    .unwrap();
    std::fs::write(dir.path().join("src/marts/metrics.yaml"), METRIC).unwrap();
    // Not under model-paths: not read.
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::write(dir.path().join("models/x.yml"), "metrics: [oops]\n").unwrap();
    let s = SemanticLayer::load_from(
        &SemanticSource::DbtProject(dir.path().to_owned()),
        &schema(),
    )
    .unwrap();
    assert!(s.metric("t").is_some());
    std::fs::write(
        dir.path().join("dbt_project.yml"),
        "name: p\nmodel-paths: [\"nowhere\"]\n",
    )
    .unwrap();
    let err = SemanticLayer::load_from(
        &SemanticSource::DbtProject(dir.path().to_owned()),
        &schema(),
    )
    .unwrap_err();
    assert!(err.reason.contains("not a directory"), "{err}");
}

#[test]
fn cycles_are_rejected() {
    let text = format!(
        "{MODEL}metrics:\n  - name: a\n    type: ratio\n    type_params: {{numerator: b, denominator: b}}\n  - name: b\n    type: derived\n    type_params: {{expr: a, metrics: [a]}}\n"
    );
    let err = load(&text).unwrap_err();
    assert!(err.reason.contains("cycle"), "{err}");
}

#[test]
fn windows_parse() {
    use super::super::model::Window;
    let w = |s: &str| Window::parse(s).map(|w| (w.count, w.grain));
    assert_eq!(w("7 days"), Some((7, Grain::Day)));
    assert_eq!(w("1 month"), Some((1, Grain::Month)));
    assert_eq!(w("2 weeks"), Some((2, Grain::Week)));
    assert_eq!(w("7"), None);
    assert_eq!(w("-1 days"), None);
    assert_eq!(w("3 fortnights"), None);
}
