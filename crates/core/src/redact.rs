//! URLs as logs, metrics and reasons may show them: a webhook URL often carries its secret
//! in the path or the query, a database or broker URL its password in the user info.

/// A URL's scheme, authority (`[user info@]host[:port]`) and the rest (path, query,
/// fragment); None for text that is not a URL.
fn parts(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    Some((scheme, authority, tail))
}

/// The URL with its user info, path, query and fragment hidden: `scheme://host[:port]/…`.
/// For webhook URLs, whose path is often the secret. Text that is not a URL becomes `…`.
pub fn origin(url: &str) -> String {
    let Some((scheme, authority, tail)) = parts(url) else {
        return "…".into();
    };
    let (host, hidden) = match authority.rsplit_once('@') {
        Some((_, host)) => (host, true),
        None => (authority, !tail.is_empty()),
    };
    format!("{scheme}://{host}{}", if hidden { "/…" } else { "" })
}

/// The URL with the password in its user info replaced by `***`; everything else kept. For
/// database and broker URLs, whose path (the database, the vhost) helps an operator.
pub fn password(url: &str) -> String {
    let Some((scheme, authority, tail)) = parts(url) else {
        return url.into();
    };
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_shows_only_its_scheme_and_host() {
        assert_eq!(
            origin("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            origin("http://u:p@example.com:8080/x?token=1"),
            "http://example.com:8080/…"
        );
        assert_eq!(origin("https://example.com?key=secret"), "https://example.com/…");
        assert_eq!(origin("https://example.com"), "https://example.com");
        assert_eq!(origin("not a url"), "…");
    }

    #[test]
    fn a_connection_url_keeps_everything_but_its_password() {
        assert_eq!(
            password("postgres://penstock:s3cret@db:5432/penstock?sslmode=require"),
            "postgres://penstock:***@db:5432/penstock?sslmode=require"
        );
        assert_eq!(
            password("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(password("amqp://user@host/vhost"), "amqp://user@host/vhost");
        assert_eq!(password("postgres://p:a@b@host/db"), "postgres://p:***@host/db");
        assert_eq!(password("postgres://127.0.0.1/test"), "postgres://127.0.0.1/test");
    }
}
