//! Fictional people, companies and ticket texts. Domains use the reserved
//! `.example` TLD (RFC 2606) and phone numbers the 555-01xx fictional range.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

const FIRST: &[&str] = &[
    "Ava", "Liam", "Maya", "Noah", "Zara", "Ethan", "Chloe", "Mateo", "Priya", "Lucas", "Amara",
    "Jonas", "Sofia", "Kenji", "Lena", "Omar", "Isla", "Rafael", "Hana", "Felix", "Nadia", "Arjun",
    "Elena", "Tomás", "Grace", "Yusuf", "Clara", "Diego", "Freya", "Malik", "Ingrid", "Wei",
    "Aisha", "Pierre", "Leila", "Hugo", "Mei", "Samuel", "Olga", "Kofi",
];
const LAST: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Silva",
    "Novak",
    "Brennan",
    "Haddad",
    "Kowalski",
    "Reyes",
    "Fischer",
    "Nakamura",
    "Patel",
    "Dubois",
    "Andersen",
    "Costa",
    "Murphy",
    "Schneider",
    "Ivanova",
    "Mensah",
    "Garcia",
    "Larsen",
    "Rossi",
    "Yilmaz",
    "Chen",
    "Byrne",
    "Keller",
    "Sato",
    "Alvarez",
    "Nguyen",
];
const ADJ: &[&str] = &[
    "Blue", "North", "Bright", "Iron", "Silver", "Quiet", "Rapid", "Cedar", "Harbor", "Summit",
    "Golden", "Clear", "Red", "Atlas", "Maple", "Polar", "Copper", "Lumen", "Vertex", "Orbit",
];
const NOUN: &[&str] = &[
    "River",
    "Peak",
    "Field",
    "Stone",
    "Bridge",
    "Wave",
    "Forge",
    "Grove",
    "Point",
    "Path",
    "Crest",
    "Works",
    "Labs",
    "Systems",
    "Logistics",
    "Health",
    "Retail",
    "Capital",
    "Media",
    "Learning",
];
const SUFFIX: &[&str] = &["Inc", "Ltd", "GmbH", "LLC", "Co", "AG", "SA", "BV"];

fn one<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// A first and last name.
pub fn person(rng: &mut ChaCha8Rng) -> (String, String) {
    (one(rng, FIRST).to_owned(), one(rng, LAST).to_owned())
}

/// A company name, unique per id.
pub fn company_name(rng: &mut ChaCha8Rng, id: i64) -> String {
    let a = one(rng, ADJ);
    let n = one(rng, NOUN);
    let s = one(rng, SUFFIX);
    if id % 3 == 0 {
        format!("{a} {n} {id} {s}")
    } else {
        format!("{a}{n} {s} #{id}")
    }
}

/// An email domain for a company: letters and digits only, under `.example`.
pub fn domain(company: &str) -> String {
    let slug: String = company
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    format!("{slug}.example")
}

/// A fictional phone number (NANP 555-01xx range reserved for fiction).
pub fn phone(rng: &mut ChaCha8Rng) -> String {
    format!(
        "+1-{}-555-01{:02}",
        rng.random_range(200..990),
        rng.random_range(0..100)
    )
}

/// A ticket subject and body in a customer's words, with their name and email.
pub fn ticket_text(
    rng: &mut ChaCha8Rng,
    category: &str,
    name: &str,
    email: &str,
) -> (String, String) {
    let subject = match category {
        "billing" => one(
            rng,
            &[
                "Invoice looks wrong",
                "Charged twice this month",
                "Need a VAT receipt",
            ],
        ),
        "bug" => one(
            rng,
            &[
                "Dashboard does not load",
                "CSV export is empty",
                "Chart shows wrong dates",
            ],
        ),
        "how_to" => one(
            rng,
            &[
                "How do I share a report?",
                "Setting up SSO",
                "Scheduling an export",
            ],
        ),
        "account" => one(
            rng,
            &[
                "Cannot log in",
                "Transfer ownership of workspace",
                "Remove a former employee",
            ],
        ),
        _ => one(
            rng,
            &[
                "Request: dark mode",
                "Request: Slack alerts",
                "Request: more chart types",
            ],
        ),
    };
    let body = format!(
        "Hi team, this is {name} ({email}). {subject}. Please call me back if needed. Thanks, {}",
        name.split(' ').next().unwrap_or(name)
    );
    (format!("{subject} - {name}"), body)
}
