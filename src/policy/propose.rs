//! Proposing column classes for a starter policy from column names and
//! sampled values. Pure: the catalogue and samples are read elsewhere
//! (`warehouse::introspect`).

use std::sync::LazyLock;

use regex::Regex;

use super::ColumnClass;

/// A column as seen in the warehouse catalogue, with sampled values.
#[derive(Debug, Clone)]
pub struct ColumnSample {
    /// Column name.
    pub name: String,
    /// Up to a few dozen non-null values, as text.
    pub samples: Vec<String>,
}

/// A table as seen in the warehouse catalogue.
#[derive(Debug, Clone)]
pub struct TableSample {
    /// Table name.
    pub name: String,
    /// Its columns.
    pub columns: Vec<ColumnSample>,
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$").expect("email pattern compiles")
});
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\+?[\d\s().-]{7,20}$").expect("phone pattern compiles"));
static PERSON_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Z][a-z'\u00C0-\u017F-]+\s+[A-Z][a-z'\u00C0-\u017F-]+$")
        .expect("name pattern compiles")
});

const PII_NAME_PARTS: &[&str] = &[
    "email",
    "e_mail",
    "phone",
    "mobile",
    "fax",
    "firstname",
    "first_name",
    "lastname",
    "last_name",
    "fullname",
    "full_name",
    "contact_name",
    "address",
    "street",
    "postal",
    "postcode",
    "zip",
    "ssn",
    "passport",
    "birth",
    "dob",
    "zipcode",
    "ip_address",
    "iban",
    "card",
    "salary",
    "subject",
    "body",
    "comment",
    "message",
    "note",
];
const SENSITIVE_NAME_PARTS: &[&str] = &[
    "amount", "price", "revenue", "mrr", "arr", "total", "cost", "margin", "company", "balance",
    "usd",
];

/// Whether a name part (`first_name`, `email`) is among an identifier's
/// tokens: as a run of whole tokens, or, for parts of five letters or more,
/// as the start of one (`emailaddress`). Never inside a word, so `arr`
/// does not match `date_arrived`.
fn has_part(tokens: &[String], part: &str) -> bool {
    let want: Vec<&str> = part.split('_').collect();
    if tokens
        .windows(want.len())
        .any(|w| w.iter().zip(&want).all(|(a, b)| a == b))
    {
        return true;
    }
    want.len() == 1 && part.len() >= 5 && tokens.iter().any(|t| t.starts_with(part))
}

/// Proposes a class for one column, with the reason: from its name's
/// tokens, then from sampled values.
pub fn propose_class(table: &str, column: &ColumnSample) -> (ColumnClass, String) {
    let tokens = crate::text::words(&column.name);
    let n = column.name.to_ascii_lowercase();
    if let Some(part) = PII_NAME_PARTS.iter().find(|p| has_part(&tokens, p)) {
        return (ColumnClass::Pii, format!("name has the word {part:?}"));
    }
    let table_tokens = crate::text::words(table);
    let people_table = [
        "customer", "user", "employee", "person", "people", "contact", "member",
    ]
    .iter()
    .any(|t| table_tokens.iter().any(|w| w.starts_with(t)));
    if people_table && n == "name" {
        return (
            ColumnClass::Pii,
            "a name column in a table of people".into(),
        );
    }
    let share = |re: &Regex| {
        let hits = column
            .samples
            .iter()
            .filter(|v| re.is_match(v.trim()))
            .count();
        if column.samples.is_empty() {
            0.0
        } else {
            hits as f64 / column.samples.len() as f64
        }
    };
    if share(&EMAIL) >= 0.5 {
        return (
            ColumnClass::Pii,
            "sampled values look like email addresses".into(),
        );
    }
    let digits_like_phone = column
        .samples
        .iter()
        .any(|v| v.contains(['-', ' ', '(', '+']));
    if digits_like_phone && share(&PHONE) >= 0.5 {
        return (
            ColumnClass::Pii,
            "sampled values look like phone numbers".into(),
        );
    }
    if share(&PERSON_NAME) >= 0.6 && people_table {
        return (
            ColumnClass::Pii,
            "sampled values look like people's names".into(),
        );
    }
    if let Some(part) = SENSITIVE_NAME_PARTS.iter().find(|p| has_part(&tokens, p)) {
        return (
            ColumnClass::Sensitive,
            format!("name has the word {part:?}"),
        );
    }
    (
        ColumnClass::Public,
        "no sign of personal or confidential data".into(),
    )
}

/// Renders a starter `schema.yaml` for the sampled tables.
pub fn starter_schema(tables: &[TableSample]) -> String {
    let mut out = String::from(
        "# Starter allow-list written by `steward policy init`. Column classes are proposals\n\
         # from names and sampled values: review every one before use, and remove tables\n\
         # and columns steward should not see.\ntables:\n",
    );
    for t in tables {
        out.push_str(&format!(
            "  {}:\n    description: \"\"\n    columns:\n",
            yaml_key(&t.name)
        ));
        for c in &t.columns {
            if !super::load::is_identifier(&c.name.to_ascii_lowercase()) {
                out.push_str(&format!(
                    "      # {:?} left out: not a plain identifier, so it cannot be allow-listed\n",
                    c.name
                ));
                continue;
            }
            let (class, why) = propose_class(&t.name, c);
            out.push_str(
                &format!("      {}: {{class: {class}}}  # {why}\n", yaml_key(&c.name))
                    .replace("class: PII", "class: pii"),
            );
        }
    }
    out
}

fn yaml_key(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if super::load::is_identifier(&lower) {
        lower
    } else {
        format!("{lower:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, samples: &[&str]) -> ColumnSample {
        ColumnSample {
            name: name.into(),
            samples: samples.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn classes_from_names_and_values() {
        assert_eq!(
            propose_class("customers", &col("Email", &[])).0,
            ColumnClass::Pii
        );
        assert_eq!(
            propose_class("t", &col("contact", &["a@b.example", "c@d.example"])).0,
            ColumnClass::Pii
        );
        assert_eq!(
            propose_class(
                "t",
                &col("reach", &["+1 (555) 010-2030", "+44 20 7946 0000"])
            )
            .0,
            ColumnClass::Pii
        );
        assert_eq!(
            propose_class("employee", &col("who", &["Ada Lovelace", "Alan Turing"])).0,
            ColumnClass::Pii
        );
        assert_eq!(
            propose_class("track", &col("Name", &["Hells Bells", "Back In Black"])).0,
            ColumnClass::Public
        );
        assert_eq!(
            propose_class("invoice", &col("Total", &["1.98"])).0,
            ColumnClass::Sensitive
        );
        assert_eq!(
            propose_class("invoice", &col("InvoiceId", &["1", "2"])).0,
            ColumnClass::Public
        );
    }

    #[test]
    fn names_match_on_whole_tokens_not_substrings() {
        let class = |t: &str, c: &str| propose_class(t, &col(c, &[])).0;
        // "arr" (annual recurring revenue) is not inside "arrived" or "carrier".
        assert_eq!(class("visits", "date_arrived"), ColumnClass::Public);
        assert_eq!(class("flights", "carrier"), ColumnClass::Public);
        assert_eq!(class("accounts", "arr"), ColumnClass::Sensitive);
        assert_eq!(class("accounts", "arr_usd"), ColumnClass::Sensitive);
        // Camel case and run-together words still match.
        assert_eq!(class("customer", "BillingAddress"), ColumnClass::Pii);
        assert_eq!(class("customer", "FirstName"), ColumnClass::Pii);
        assert_eq!(class("t", "emailaddress"), ColumnClass::Pii);
        assert_eq!(class("t", "zip"), ColumnClass::Pii);
        // "note" is not inside "notation"; "total" is a word of "sub_total".
        assert_eq!(class("t", "notation"), ColumnClass::Public);
        assert_eq!(class("t", "sub_total"), ColumnClass::Sensitive);
        assert_eq!(class("cards", "card_number"), ColumnClass::Pii);
        assert_eq!(class("t", "discarded"), ColumnClass::Public);
    }

    #[test]
    fn the_starter_schema_loads_as_a_policy() {
        let yaml = starter_schema(&[TableSample {
            name: "Customer".into(),
            columns: vec![
                col("CustomerId", &["1"]),
                col("Email", &["x@y.example"]),
                col("Ratings_(millions)", &["1.5"]),
            ],
        }]);
        assert!(yaml.contains("left out"), "{yaml}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("schema.yaml"), &yaml).unwrap();
        std::fs::write(
            dir.path().join("roles.yaml"),
            "roles:\n  r:\n    can: [sql]\n    columns: {public: allow}\n",
        )
        .unwrap();
        let p = crate::policy::Policy::load(dir.path()).unwrap();
        assert_eq!(
            p.schema.column("customer", "email").unwrap().class,
            ColumnClass::Pii
        );
    }
}
