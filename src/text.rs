//! Word handling shared by the parts that match questions against names:
//! schema linking, the planner, prompt example selection and `policy init`'s
//! class proposals. Pure; crude on purpose (English plurals only), so that
//! every part matches words the same way.

/// A crude English singular: `countries` → `country`, `classes` → `class`,
/// `singers` → `singer`; words ending in `ss` or `us` and words of three
/// letters or fewer stay as they are.
pub fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies").filter(|s| s.len() >= 2) {
        return format!("{stem}y");
    }
    if let Some(stem) = word.strip_suffix("sses") {
        return format!("{stem}ss");
    }
    match word.strip_suffix('s') {
        Some(stem) if stem.len() >= 3 && !word.ends_with("ss") && !word.ends_with("us") => {
            stem.to_owned()
        }
        _ => word.to_owned(),
    }
}

/// Whether two questions are the same text, ignoring case, punctuation and
/// spacing (how verified and saved questions are recognised as asked).
pub fn same_question(a: &str, b: &str) -> bool {
    question_key(a) == question_key(b)
}

/// A question's words, lower case, joined by single spaces: equal for two
/// questions exactly when [`same_question`] holds (the stored lookup key of
/// approved verified queries).
pub fn question_key(q: &str) -> String {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lower-case singular words of a name or text: split at anything not
/// a letter or digit (`Singer_ID` → `singer`, `id`) and at camel-case humps
/// (`BillingAddress` → `billing`, `address`).
pub fn words(text: &str) -> Vec<String> {
    name_words(text).iter().map(|w| singular(w)).collect()
}

/// The lower-case words of a name or text as written, split as in
/// [`words`] but not singularised (`IndepYear` → `indep`, `year`).
pub fn name_words(text: &str) -> Vec<String> {
    let mut spaced = String::with_capacity(text.len() + 8);
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_uppercase() && prev_lower {
            spaced.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        spaced.push(if c.is_alphanumeric() { c } else { ' ' });
    }
    spaced.split_whitespace().map(str::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_match_ignoring_case_and_punctuation_only() {
        assert!(same_question(
            "How many customers are on each plan?",
            "how many customers are on each plan"
        ));
        assert!(!same_question(
            "How many customers are on each plan?",
            "How many customers are in each region?"
        ));
    }

    #[test]
    fn plurals_and_names() {
        for (w, s) in [
            ("countries", "country"),
            ("classes", "class"),
            ("singers", "singer"),
            ("address", "address"),
            ("status", "status"),
            ("ids", "ids"),
        ] {
            assert_eq!(singular(w), s, "{w}");
        }
        assert_eq!(words("Singer_ID"), ["singer", "id"]);
        assert_eq!(words("BillingAddress2"), ["billing", "address2"]);
        assert_eq!(words("customers' e-mails"), ["customer", "e", "mail"]);
    }
}
