/// 16 hex digits: unique enough for names and short enough for PostgreSQL's 63-byte identifiers.
pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// `url` with its database (the last path segment) replaced by `database`, keeping any query string.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_swaps_only_the_database() {
        assert_eq!(with_database("postgres://u:p@h:5432/settle", "t1"), "postgres://u:p@h:5432/t1");
        assert_eq!(with_database("postgres://h/settle?sslmode=disable", "t2"), "postgres://h/t2?sslmode=disable");
    }

    #[test]
    fn suffixes_differ() {
        assert_ne!(unique_suffix(), unique_suffix());
    }
}
