//! Identifiers written into SQL text.

/// `name` double-quoted, its own quotes doubled: read back as exactly `name`.
pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `name` as SQL: bare when it is a plain lower-case identifier (which reads back as itself),
/// else [`quoted`].
pub fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        quoted(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_only_when_they_must_be() {
        assert_eq!(ident("order_id"), "order_id");
        assert_eq!(ident("_x1"), "_x1");
        assert_eq!(ident("Order"), "\"Order\"");
        assert_eq!(ident("1st"), "\"1st\"");
        assert_eq!(ident(""), "\"\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}
