//! The function allow-list, and bounds on functions whose output can be far
//! larger than their input.

use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, UnaryOperator, Value};

use super::Rejection;

/// Functions analysts use across SQLite and PostgreSQL: aggregates, window
/// functions, string, math, conditional and date functions. Anything else
/// (file access, sleeps, extensions, remote links, admin functions) is refused.
pub(super) const ALLOWED_FUNCTIONS: &[&str] = &[
    // aggregates
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "total",
    "group_concat",
    "string_agg",
    "array_agg",
    "bool_and",
    "bool_or",
    "every",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "percentile_cont",
    "percentile_disc",
    "median",
    "mode",
    "corr",
    "covar_pop",
    "covar_samp",
    // window
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    // conditional and null handling
    "coalesce",
    "ifnull",
    "nullif",
    "iif",
    "iff",
    "nvl",
    "greatest",
    "least",
    // math
    "abs",
    "round",
    "ceil",
    "ceiling",
    "floor",
    "trunc",
    "sign",
    "sqrt",
    "power",
    "pow",
    "exp",
    "ln",
    "log",
    "log10",
    "mod",
    "div",
    // strings
    "lower",
    "upper",
    "length",
    "char_length",
    "character_length",
    "substr",
    "substring",
    "trim",
    "ltrim",
    "rtrim",
    "btrim",
    "replace",
    "instr",
    "strpos",
    "position",
    "concat",
    "concat_ws",
    "printf",
    "format",
    "left",
    "right",
    "lpad",
    "rpad",
    "split_part",
    "initcap",
    "reverse",
    // dates and times
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "date_trunc",
    "date_part",
    "to_char",
    "to_date",
    "to_timestamp",
    "now",
    "current_date",
    "current_timestamp",
    "age",
    "make_date",
    "extract",
    "dateadd",
    "datediff",
    "date_add",
    "date_sub",
    // casts
    "cast",
    "to_number",
];

/// Whether the guard allows calling function `name` (lower case), for the
/// engine's own check of what runs (SQLite's authorizer). `like` is allowed
/// too: SQLite runs the `LIKE` operator, which the guard accepts, as that
/// function.
pub fn allowed(name: &str) -> bool {
    name == "like" || ALLOWED_FUNCTIONS.contains(&name)
}

/// Date-part keywords some dialects take as bare words (`DATEADD(day, 1, x)`);
/// a bare identifier with one of these names that is not a column is accepted.
pub(super) const DATE_PARTS: &[&str] = &[
    "year",
    "years",
    "quarter",
    "month",
    "months",
    "week",
    "weeks",
    "day",
    "days",
    "dayofweek",
    "dow",
    "doy",
    "hour",
    "hours",
    "minute",
    "minutes",
    "second",
    "seconds",
    "millisecond",
    "microsecond",
    "epoch",
];

/// Functions whose first argument is a date part (`DATEADD(day, 1, x)`),
/// which Snowflake takes as a bare word.
pub(super) fn takes_date_part(name: &str) -> bool {
    matches!(
        name,
        "dateadd" | "datediff" | "date_add" | "date_sub" | "date_part" | "date_trunc"
    )
}

/// Widest `printf`/`format` field and longest `lpad`/`rpad` result allowed.
pub(super) const MAX_OUTPUT_WIDTH: u64 = 1_000;

/// Bounds the functions that can make one value far larger than the
/// statement: a `printf`/`format` field width or precision, an `lpad`/`rpad`
/// length, and a `replace` whose replacement is longer than what it replaces
/// (nested, each level multiplies the length). These run inside one call that
/// no statement timeout interrupts, so they are checked before anything runs.
///
/// # Errors
/// [`Rejection::Function`] naming the function and the bound.
pub(super) fn check_output_size(name: &str, args: &[FunctionArg]) -> Result<(), Rejection> {
    let arg = |i: usize| match args.get(i) {
        Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) => Some(e),
        _ => None,
    };
    let refuse = |why: &str| Err(Rejection::Function(format!("{name} {why}")));
    match name {
        "printf" | "format" => match arg(0).and_then(string_literal) {
            Some(f) if format_widths_within(f, MAX_OUTPUT_WIDTH) => Ok(()),
            Some(_) => refuse(&format!(
                "with a field width or precision over {MAX_OUTPUT_WIDTH}, or one taken from an argument (*)"
            )),
            None => refuse("with a format that is not a string literal"),
        },
        "lpad" | "rpad" => match arg(1).and_then(integer_literal) {
            Some(n) if n <= MAX_OUTPUT_WIDTH as i128 => Ok(()),
            _ => refuse(&format!(
                "with a length that is not a number literal up to {MAX_OUTPUT_WIDTH}"
            )),
        },
        "replace" => match (arg(1).and_then(string_literal), arg(2).map(string_literal)) {
            (_, None) => Ok(()),
            (Some(from), Some(Some(to))) if to.chars().count() <= from.chars().count().max(1) => {
                Ok(())
            }
            _ => refuse("with a replacement longer than the text it replaces"),
        },
        _ => Ok(()),
    }
}

fn string_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s),
            _ => None,
        },
        Expr::Nested(inner) => string_literal(inner),
        _ => None,
    }
}

fn integer_literal(e: &Expr) -> Option<i128> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => integer_literal(expr).map(|n| -n),
        Expr::Nested(inner) => integer_literal(inner),
        _ => None,
    }
}

/// Whether every `%` conversion in a printf-style format (C99 §7.19.6.1,
/// which SQLite's `printf` and PostgreSQL's `format` follow in this respect)
/// has a field width and precision of at most `max` and none taken from an
/// argument (`*`). PostgreSQL's positional `%1$s` is read the same way.
fn format_widths_within(format: &str, max: u64) -> bool {
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let mut number = String::new();
        while let Some(&d) = chars.peek() {
            match d {
                '0'..='9' => number.push(d),
                '*' => return false,
                '.' | '$' | '-' | '+' | ' ' | '#' | '\'' | ',' | '!' | 'l' | 'h' => {
                    if number.parse::<u64>().is_ok_and(|n| n > max) {
                        return false;
                    }
                    number.clear();
                }
                _ => break,
            }
            chars.next();
        }
        if number
            .parse::<u64>()
            .map_or(!number.is_empty(), |n| n > max)
        {
            return false;
        }
        chars.next();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::format_widths_within;

    #[test]
    fn printf_widths_are_bounded() {
        for ok in ["%d", "%s-%02d-01", "%.2f", "%%", "%10s", "%-5d", "%1$s"] {
            assert!(format_widths_within(ok, 1000), "{ok}");
        }
        for bad in [
            "%0900000000d",
            "%.99999f",
            "%*d",
            "%.*f",
            "%5000s",
            "%1$5000s",
            "%99999999999999999999999d",
        ] {
            assert!(!format_widths_within(bad, 1000), "{bad}");
        }
    }
}
