//! What a model reply proposes: a statement in a fenced block, a refusal,
//! or nothing.

/// What one model reply proposed.
#[derive(Debug, Clone, PartialEq)]
pub enum Proposal {
    /// A statement (fences and a trailing `;` removed).
    Sql(String),
    /// The model said the tables cannot answer, with its reason.
    CannotAnswer(String),
    /// Nothing usable.
    Nothing,
}

/// Reads a reply: the first ```` ```sql ```` (or bare ```` ``` ````) block,
/// else text starting at `SELECT`/`WITH`; a `-- cannot answer` line is a
/// refusal.
pub fn read_proposal(text: &str) -> Proposal {
    let lower = text.to_lowercase();
    if let Some(i) = lower.find("cannot answer") {
        let fenced_sql = lower.find("```").is_some_and(|f| f < i) && lower[..i].contains("select");
        if !fenced_sql {
            let why = text[i + "cannot answer".len()..]
                .trim_start_matches([':', ' '])
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();
            return Proposal::CannotAnswer(why);
        }
    }
    let body = if let Some(start) = text.find("```") {
        let after = &text[start + 3..];
        let after = after
            .strip_prefix("sql")
            .or_else(|| after.strip_prefix("SQL"))
            .unwrap_or(after);
        match after.find("```") {
            Some(end) => &after[..end],
            None => after,
        }
    } else {
        let starts = ["select", "with"]
            .iter()
            .filter_map(|k| lower.find(k))
            .min();
        match starts {
            Some(s) => &text[s..],
            None => return Proposal::Nothing,
        }
    };
    let sql = body.trim().trim_end_matches(';').trim();
    if sql.is_empty() {
        Proposal::Nothing
    } else {
        Proposal::Sql(sql.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_are_read_from_fences_bare_text_and_refusals() {
        let sql = |s: &str| Proposal::Sql(s.into());
        assert_eq!(read_proposal("```sql\nSELECT 1;\n```"), sql("SELECT 1"));
        assert_eq!(
            read_proposal("Here:\n```\nSELECT a FROM t\n```\nDone."),
            sql("SELECT a FROM t")
        );
        assert_eq!(
            read_proposal("SELECT count(*) FROM t;"),
            sql("SELECT count(*) FROM t")
        );
        assert_eq!(
            read_proposal("with x as (select 1) select * from x"),
            sql("with x as (select 1) select * from x")
        );
        assert_eq!(
            read_proposal("-- cannot answer: no ratings table"),
            Proposal::CannotAnswer("no ratings table".into())
        );
        assert_eq!(read_proposal("I am not sure."), Proposal::Nothing);
        assert_eq!(read_proposal("```sql\n```"), Proposal::Nothing);
    }
}
