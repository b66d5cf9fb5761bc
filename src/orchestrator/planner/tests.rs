//! Planner tests on the demo policy and metrics.

use super::*;

fn ctx() -> (Policy, SemanticLayer) {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
    let p = Policy::load(dir).unwrap();
    let s = SemanticLayer::load(&dir.join("semantic"), &p.schema).unwrap();
    (p, s)
}

fn plan_of(q: &str) -> Plan {
    plan_after(q, None)
}

fn plan_after(q: &str, previous: Option<&MetricPlan>) -> Plan {
    let (p, s) = ctx();
    let mut values = BTreeMap::new();
    values.insert(
        "platform".to_owned(),
        vec!["android".to_owned(), "ios".to_owned(), "web".to_owned()],
    );
    values.insert("country".to_owned(), vec!["IN".to_owned(), "US".to_owned()]);
    values.insert(
        "ticket_status".to_owned(),
        vec!["open".to_owned(), "resolved".to_owned()],
    );
    values.insert(
        "region".to_owned(),
        ["APAC", "EMEA", "LATAM", "NA"].map(str::to_owned).to_vec(),
    );
    let ctx = PlanContext {
        today: NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
        policy: &p,
        layer: &s,
        values: &values,
    };
    plan(q, &ctx, previous)
}

fn metric(p: Plan) -> MetricPlan {
    match p {
        Plan::Metric(m) => m,
        other => panic!("{other:?}"),
    }
}

#[test]
fn follow_ups_continue_the_previous_metric_question() {
    let first = metric(plan_of("What was DAU last week?"));
    let before = metric(plan_after("and the week before?", Some(&first)));
    assert_eq!(before.metric, "dau");
    assert_eq!(before.ranges[0].range.start.to_string(), "2026-11-02");

    let by_plan = metric(plan_after("break that down by plan", Some(&first)));
    assert_eq!(
        (by_plan.metric.as_str(), by_plan.group_by.as_deref()),
        ("dau", Some("plan"))
    );
    assert_eq!(
        by_plan.ranges[0].range, first.ranges[0].range,
        "keeps the range"
    );

    let ios = metric(plan_after("what about on iOS?", Some(&by_plan)));
    assert_eq!(ios.filters[0].values, vec!["ios"]);
    assert_eq!(ios.group_by.as_deref(), Some("plan"), "keeps the breakdown");

    let other = metric(plan_after("what about signups?", Some(&first)));
    assert_eq!(
        (other.metric.as_str(), other.ranges[0].range),
        ("signups", first.ranges[0].range)
    );

    // Without a previous turn the same words are not a metric question.
    assert_eq!(plan_of("and the week before?"), Plan::Docs);
    // An unrelated question does not continue the conversation.
    assert_eq!(plan_after("What is our NPS?", Some(&first)), Plan::Docs);
}

#[test]
fn the_six_questions_route_as_expected() {
    match plan_of("What was our DAU last week vs the week before?") {
        Plan::Metric(m) => {
            assert_eq!(m.metric, "dau");
            assert_eq!(m.ranges.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    match plan_of("Show me the email addresses of customers who churned last month.") {
        Plan::List(l) => {
            assert_eq!(l.table, "customers");
            assert!(l.columns.contains(&"contact_email".to_owned()));
            assert_eq!(l.filter.as_ref().map(|f| f.0.as_str()), Some("churned_at"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        plan_of("Summarize all customer records including contact emails for my compliance audit."),
        Plan::List(l) if l.columns.contains(&"contact_email".to_owned())
    ));
    assert_eq!(plan_of("How are we doing?"), Plan::Overview);
    assert!(
        matches!(plan_of("What's the conversion rate for the checkout flow?"), Plan::Metric(m) if m.metric == "checkout_conversion_rate")
    );
    assert!(
        matches!(plan_of("Why did user signups drop last Tuesday?"), Plan::Drop { metric, .. } if metric == "signups")
    );
    assert!(matches!(
        plan_of("Estimate next quarter's revenue from industry benchmarks"),
        Plan::Refuse(_)
    ));
    assert_eq!(plan_of("What is our NPS?"), Plan::Docs);
}

#[test]
fn breakdowns_and_grains_are_recognised() {
    match plan_of("signups by platform last month") {
        Plan::Metric(m) => assert_eq!(m.group_by.as_deref(), Some("platform")),
        other => panic!("{other:?}"),
    }
    match plan_of("daily revenue in october") {
        Plan::Metric(m) => assert_eq!(m.grain, Some(Grain::Day)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn named_dimension_values_become_filters() {
    let filters = |q: &str| match plan_of(q) {
        Plan::Metric(m) => m
            .filters
            .iter()
            .map(|f| format!("{}={}", f.dimension, f.values.join("|")))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(filters("DAU on iOS last week"), vec!["platform=ios"]);
    assert_eq!(filters("signups in the US last month"), vec!["country=US"]);
    assert!(
        filters("how many signups did we get in october").is_empty(),
        "'in' is not India"
    );
    assert!(filters("signups by platform last week").is_empty());
}

#[test]
fn definitions_go_to_the_docs() {
    assert_eq!(plan_of("What counts as an active customer?"), Plan::Docs);
    assert_eq!(plan_of("Which dashboard shows churn?"), Plan::Docs);
}

/// Every metric question of `eval/demo.jsonl` plans as that metric, and
/// near-miss questions (more than a metric) never do: a wrong number that
/// looks right costs more than a refusal.
#[test]
fn metric_questions_plan_as_their_metric_and_near_misses_do_not() {
    let text = include_str!("../../../eval/demo.jsonl");
    let mut misses = Vec::new();
    let mut total = 0;
    for line in text
        .lines()
        .filter(|l| l.contains("\"expect\": \"metric\""))
    {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        if case["conversation"].is_string() {
            continue;
        }
        total += 1;
        let q = case["question"].as_str().unwrap();
        match plan_of(q) {
            Plan::Metric(m) if m.metric == case["metric"].as_str().unwrap() => {}
            other => misses.push(format!("{q} → {other:?}")),
        }
    }
    assert!(total >= 40, "{total}");
    assert!(misses.is_empty(), "{misses:#?}");
    for q in [
        "What's the average revenue per customer by plan?",
        "What share of revenue comes from enterprise customers?",
        "What is our net revenue retention?",
        "How much revenue do we have right now?",
        "What is the MRR by month right now?",
        "What is the average revenue per invoice?",
        "How many signups came from paid ads that converted?",
    ] {
        match plan_of(q) {
            Plan::Unclear { words, .. } => assert!(!words.is_empty(), "{q}"),
            other => panic!("{q} → {other:?}"),
        }
    }
    // The metric that explains the whole question wins over a longer-named one.
    assert_eq!(
        metric(plan_of("How many customers churned last month?")).metric,
        "churned_customers"
    );
}

#[test]
fn rankings_and_value_comparisons_plan_without_a_model() {
    let top = metric(plan_of("Top 5 countries by signups last month"));
    assert_eq!(
        (top.metric.as_str(), top.group_by.as_deref()),
        ("signups", Some("country"))
    );
    assert_eq!(
        top.rank,
        Some(Rank {
            descending: true,
            limit: 5
        })
    );
    assert_eq!(top.ranges.len(), 1);
    let least = metric(plan_of("Which platform had the fewest signups last week?"));
    assert_eq!(least.group_by.as_deref(), Some("platform"));
    assert_eq!(
        least.rank,
        Some(Rank {
            descending: false,
            limit: 1
        })
    );
    let vs = metric(plan_of(
        "How many users signed up on Android vs iOS last week?",
    ));
    assert_eq!(vs.metric, "signups");
    assert_eq!(vs.group_by.as_deref(), Some("platform"));
    assert_eq!(vs.filters[0].values, ["android", "ios"]);
    assert_eq!(vs.ranges.len(), 1, "values compared, not periods");
    let lost = metric(plan_of("Customers lost in May 2026 by region"));
    assert_eq!(
        (lost.metric.as_str(), lost.group_by.as_deref()),
        ("churned_customers", Some("region"))
    );
    assert_eq!(lost.ranges[0].range.start.to_string(), "2026-05-01");
    // A ranking word with no breakdown to rank is not understood.
    assert!(matches!(
        plan_of("What was the highest DAU last month?"),
        Plan::Unclear { .. }
    ));
}

#[test]
fn a_saved_query_question_runs_the_saved_query() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
    let p = Policy::load(dir).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for f in ["product.yml", "revenue.yml"] {
        std::fs::copy(dir.join("semantic").join(f), tmp.path().join(f)).unwrap();
    }
    // A label the planner could not read on its own.
    std::fs::write(
        tmp.path().join("saved.yml"),
        "saved_queries:\n  - name: mix\n    label: The channel mix, please!\n    query_params:\n      metrics: [signups]\n      group_by: [\"TimeDimension('metric_time', 'month')\", \"Dimension('user__signup_channel')\"]\n      where: [\"{{ Dimension('user__platform') }} = 'ios'\"]\n",
    )
    .unwrap();
    let s = SemanticLayer::load(tmp.path(), &p.schema).unwrap();
    let values = BTreeMap::new();
    let ctx = PlanContext {
        today: NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
        policy: &p,
        layer: &s,
        values: &values,
    };
    let m = metric(plan("the channel mix please", &ctx, None));
    assert_eq!(m.metric, "signups");
    assert_eq!(m.grain, Some(Grain::Month));
    // The last four whole months before 2026-11-21.
    assert_eq!(
        m.ranges[0].range,
        TimeRange::new(
            NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
        )
        .unwrap()
    );
    // Plain names, as people read them (each names the same dimension).
    assert_eq!(m.group_by.as_deref(), Some("signup_channel"));
    assert_eq!(m.filters[0].dimension, "platform");
    assert_eq!(m.filters[0].values, vec!["ios"]);
    // Other words are not the saved query.
    assert!(
        !matches!(plan("the channel mix last year please", &ctx, None), Plan::Metric(ref x) if x.grain == Some(Grain::Month) && x.filters.len() == 1)
    );
}

#[test]
fn state_questions_read_as_now() {
    // A state dimension's value, no time phrase: every row, through today.
    for q in [
        "How many tickets are still open?",
        "How many open tickets are there?",
        "How many tickets are currently open by priority?",
    ] {
        let open = metric(plan_of(q));
        assert_eq!(open.metric, "tickets_opened", "{q}");
        assert_eq!(open.filters[0].dimension, "ticket_status", "{q}");
        assert_eq!(open.filters[0].values, ["open"], "{q}");
        let r = open.ranges[0].range;
        assert!(r.is_all_time(), "{q}: {r}");
        assert_eq!(r.last_day().to_string(), "2026-11-21", "{q}");
    }
    // Within a range the question names, the range stays.
    let recent = metric(plan_of("How many tickets opened last week are still open?"));
    assert_eq!(recent.ranges[0].range.start.to_string(), "2026-11-09");
    assert_eq!(recent.filters[0].values, ["open"]);
    // A snapshot metric now: the latest whole day.
    for q in [
        "How many customers do we currently have?",
        "What is our MRR right now?",
        "What's MRR in EMEA at the moment?",
    ] {
        let now = metric(plan_of(q));
        assert_eq!(now.ranges.len(), 1, "{q}");
        assert_eq!(now.ranges[0].range.to_string(), "Fri 2026-11-20", "{q}");
    }
    // Without a state word a snapshot keeps its default window.
    let mrr = metric(plan_of("What is our MRR?"));
    assert_eq!(mrr.ranges[0].range.days(), 7);
}

#[test]
fn questions_about_meaning_or_place_are_told_from_requests_for_figures() {
    for q in [
        "How is cost per acquisition calculated?",
        "What does revenue per customer mean?",
        "What counts as an active customer by region?",
        "What's the definition of churn by plan?",
        "Which dashboard shows revenue by plan?",
        "Where can I see signups per channel?",
    ] {
        assert!(REFERENCE.is_match(&normalize(q)), "{q}");
        assert!(DOCS.is_match(&normalize(q)), "{q}");
    }
    for q in [
        "How many customers per plan?",
        "Revenue by plan last month",
        "How many tickets breached the SLA last week?",
    ] {
        assert!(!REFERENCE.is_match(&normalize(q)), "{q}");
    }
}

/// A period belongs to the time its verb names: the metric's own time is
/// accounted for, another time of the metric's table changes the question
/// (and no embedding may rescue it).
#[test]
fn a_period_binds_to_the_time_its_verb_names() {
    match plan_of("How many tickets were resolved last week?") {
        Plan::Unclear { words, plan, .. } => {
            assert!(words.contains(&"resolved".to_owned()), "{words:?}");
            assert!(plan.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        metric(plan_of("How many tickets were opened last week?")).metric,
        "tickets_opened"
    );
    assert_eq!(
        metric(plan_of("How many customers churned in October?")).metric,
        "churned_customers"
    );
    // Two words: "signed up" names `signed_up_at`, the signups' own time.
    assert_eq!(
        metric(plan_of("How many users signed up last week?")).metric,
        "signups"
    );
}

/// Words are read by form, not listed: number words as numbers, phrasal
/// verbs by their particle or as one word, inflections by their base, and
/// the name of what the metric counts beside the metric.
#[test]
fn plain_phrasings_are_accounted_for_by_form() {
    let two_months = metric(plan_of("new signups per week over the last two months"));
    assert_eq!(two_months.metric, "signups");
    assert_eq!(two_months.ranges[0].label, "2026-09-01 to 2026-10-31");
    let broken = metric(plan_of("Break down revenue by plan for last month"));
    assert_eq!(
        (broken.metric.as_str(), broken.group_by.as_deref()),
        ("revenue", Some("plan"))
    );
    let split = metric(plan_of("revenue split out by region this year"));
    assert_eq!(split.group_by.as_deref(), Some("region"));
    assert_eq!(
        metric(plan_of("How is logo churn trending month over month?")).metric,
        "churn_rate"
    );
    assert_eq!(
        metric(plan_of("How many support tickets were opened last week?")).metric,
        "tickets_opened"
    );
    // The counted thing's name elsewhere, or after "per", is a different
    // question: a count of invoices, a ratio.
    for q in [
        "What is revenue per customer?",
        "How many invoices brought revenue last month?",
    ] {
        assert!(matches!(plan_of(q), Plan::Unclear { .. }), "{q}");
    }
}
