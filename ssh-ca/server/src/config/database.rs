//! `database`, `database_password_file`, `database_ca`, `replica_name`: which database the
//! service runs on (absent or `"sqlite"`: the data directory's `jit.db`; otherwise a
//! PostgreSQL conninfo, a `postgres://` URL or libpq key=value settings).

use std::path::Path;

use crate::store::postgres::PgSettings;

/// The raw keys, as read from config.toml.
#[derive(Debug, Default)]
pub(crate) struct RawDatabase {
    pub(crate) database: Option<String>,
    pub(crate) password_file: Option<String>,
    pub(crate) ca: Option<String>,
    pub(crate) replica_name: Option<String>,
}

/// Longest `replica_name` (PostgreSQL's `application_name` keeps 63 bytes).
const MAX_REPLICA_NAME: usize = 63;

/// Validates the database keys; None = SQLite. Problems go to `errs`.
pub(crate) fn validate(
    dir: &Path,
    raw: RawDatabase,
    listen_port: u16,
    errs: &mut Vec<String>,
) -> Option<PgSettings> {
    let conninfo = match raw.database.as_deref().map(str::trim) {
        None | Some("sqlite") => {
            for (key, set) in [
                ("database_password_file", raw.password_file.is_some()),
                ("database_ca", raw.ca.is_some()),
            ] {
                if set {
                    errs.push(format!(
                        "{key} is set but database is not a PostgreSQL database; set \
                         database = \"postgres://...\" or remove {key}"
                    ));
                }
            }
            if let Some(r) = &raw.replica_name {
                check_replica_name(r, errs);
            }
            return None;
        }
        Some(s) => s.to_string(),
    };
    let params = match parse_conninfo(&conninfo) {
        Ok(p) => p,
        Err(e) => {
            errs.push(format!("database: {e}"));
            return None;
        }
    };
    let mut ok = true;
    if params.iter().any(|(k, _)| k == "password") {
        errs.push(
            "database: the connection settings carry a password; remove it and put the password \
             in a file named by database_password_file (mode 0600), so config.toml holds no secret"
                .into(),
        );
        ok = false;
    }
    let get = |key: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let sslmode = get("sslmode");
    if let Some(m) = sslmode
        && !matches!(
            m,
            "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"
        )
    {
        errs.push(format!(
            "database: sslmode={m} is not one of disable, allow, prefer, require, verify-ca, verify-full"
        ));
        ok = false;
    }
    let hosts: Vec<&str> = get("host")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    // A `hostaddr` entry is where the connection really goes (over TCP, whatever `host`
    // says: `host` then only names the server for TLS); an empty entry falls back to `host`.
    let targets: Vec<&str> = match get("hostaddr") {
        Some(addrs) => addrs
            .split(',')
            .map(str::trim)
            .enumerate()
            .map(|(i, a)| {
                if a.is_empty() {
                    hosts.get(i).copied().unwrap_or("")
                } else {
                    a
                }
            })
            .collect(),
        None => hosts,
    };
    let remote: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|h| !is_local_host(h))
        .collect();
    let weak = matches!(sslmode, None | Some("disable" | "allow" | "prefer"));
    if !remote.is_empty() && weak {
        errs.push(format!(
            "database: the host {} is reached over the network with {}: its traffic (and \
             password) could be read or changed on the way; add sslmode=verify-full (or \
             sslmode=require), with database_ca naming the server's CA if it is not a public one",
            remote.join(","),
            match sslmode {
                None =>
                    "no sslmode (libpq's default, prefer, falls back to plain text)".to_string(),
                Some(m) => format!("sslmode={m}"),
            }
        ));
        ok = false;
    }
    if raw.ca.is_some() && sslmode == Some("disable") {
        errs.push("database_ca is set but the database's sslmode=disable; remove one".into());
        ok = false;
    }
    let replica = match raw.replica_name {
        Some(r) => {
            if !check_replica_name(&r, errs) {
                ok = false;
            }
            r
        }
        None => default_replica_name(listen_port),
    };
    let nonempty = |key: &str, v: Option<String>, errs: &mut Vec<String>| match v {
        Some(p) if p.trim().is_empty() => {
            errs.push(format!("{key} is empty; name a file or remove the key"));
            None
        }
        Some(p) => Some(dir.join(p)),
        None => None,
    };
    let password_file = nonempty("database_password_file", raw.password_file, errs);
    let ca_file = nonempty("database_ca", raw.ca, errs);
    ok.then_some(PgSettings {
        conninfo,
        password_file,
        ca_file,
        replica,
    })
}

/// A replica name: 1 to 63 characters of letters, digits and `.-_:@`.
fn check_replica_name(r: &str, errs: &mut Vec<String>) -> bool {
    let good = !r.is_empty()
        && r.len() <= MAX_REPLICA_NAME
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:@".contains(c));
    if !good {
        errs.push(format!(
            "replica_name {r:?}: use 1 to {MAX_REPLICA_NAME} letters, digits and . - _ : @"
        ));
    }
    good
}

/// `<hostname>:<listen port>` (hostname from the kernel; `localhost` if unreadable).
fn default_replica_name(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ".-_".contains(*c))
        .take(MAX_REPLICA_NAME - 6)
        .collect();
    let host = if host.is_empty() {
        "localhost".to_string()
    } else {
        host
    };
    format!("{host}:{port}")
}

/// A host that is not reached over the network: a Unix socket directory (or abstract
/// socket), empty (libpq's default socket), or a loopback name or address.
fn is_local_host(h: &str) -> bool {
    if h.is_empty() || h.starts_with('/') || h.starts_with('@') || h == "localhost" {
        return true;
    }
    let bare = h.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The settings of a conninfo, as (key, value) pairs: a `postgres://` or `postgresql://`
/// URL, or libpq key=value settings.
pub(crate) fn parse_conninfo(s: &str) -> Result<Vec<(String, String)>, String> {
    if let Some(rest) = s
        .strip_prefix("postgres://")
        .or_else(|| s.strip_prefix("postgresql://"))
    {
        parse_url(rest)
    } else if s.contains("://") {
        Err(format!(
            "{:?} is not a PostgreSQL URL; use \"sqlite\", postgres://USER@HOST:PORT/DB?sslmode=verify-full or libpq settings like \"host=/run/postgresql dbname=jit user=jit-ca\"",
            s.split("://").next().unwrap_or("")
        ))
    } else if s.contains('=') {
        parse_key_values(s)
    } else {
        Err(format!(
            "{s:?} is neither \"sqlite\" nor PostgreSQL connection settings; use postgres://USER@HOST:PORT/DB?sslmode=verify-full or \"host=/run/postgresql dbname=jit user=jit-ca\""
        ))
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

/// `[user[:password]@][host[:port][,host[:port]...]][/dbname][?k=v&...]`.
fn parse_url(rest: &str) -> Result<Vec<(String, String)>, String> {
    // `user:password@`, the password possibly holding `/`, `?` or `#` unencoded (which would
    // otherwise split it into host, path or query, and echo a piece of it in an error):
    // refused before any splitting, never echoed.
    if rest
        .rsplit_once('@')
        .is_some_and(|(before, _)| before.contains(':'))
    {
        return Err(
            "the URL carries a password after its user name; remove it and put the \
                    password in a file named by database_password_file (mode 0600), so \
                    config.toml holds no secret"
                .into(),
        );
    }
    let mut out = Vec::new();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, db) = match main.split_once('/') {
        Some((a, d)) => (a, Some(d)),
        None => (main, None),
    };
    let hostspec = match authority.rsplit_once('@') {
        Some((userinfo, h)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push(("user".into(), percent_decode(user)?));
                    out.push(("password".into(), String::new()));
                }
                None => out.push(("user".into(), percent_decode(userinfo)?)),
            }
            h
        }
        None => authority,
    };
    if !hostspec.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for hp in hostspec.split(',') {
            let (h, p) = if let Some(v6) = hp.strip_prefix('[') {
                let (h, after) = v6
                    .split_once(']')
                    .ok_or_else(|| "an IPv6 host in the URL has no closing ]".to_string())?;
                (h.to_string(), after.strip_prefix(':').unwrap_or(""))
            } else {
                match hp.rsplit_once(':') {
                    Some((h, p)) => (h.to_string(), p),
                    None => (hp.to_string(), ""),
                }
            };
            if !p.is_empty() && p.parse::<u16>().is_err() {
                return Err(
                    "a port in the URL is not a number (write HOST:PORT, the port in \
                            digits)"
                        .into(),
                );
            }
            hosts.push(percent_decode(&h)?);
            ports.push(p.to_string());
        }
        out.push(("host".into(), hosts.join(",")));
        if ports.iter().any(|p| !p.is_empty()) {
            out.push(("port".into(), ports.join(",")));
        }
    }
    if let Some(d) = db.filter(|d| !d.is_empty()) {
        out.push(("dbname".into(), percent_decode(d)?));
    }
    for kv in query.unwrap_or("").split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("the URL parameter {kv:?} has no value (use key=value)"))?;
        out.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok(out)
}

/// libpq `key=value` settings separated by spaces; a value may be single-quoted, with `\'`
/// and `\\` escapes.
fn parse_key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("the setting {key:?} has no value (use key=value)"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("the value of {key:?} has no closing quote"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    chars.next();
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                    continue;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use std::path::Path;

    fn parse(t: &str) -> Result<Config, Vec<String>> {
        Config::parse(Path::new("/d"), t)
    }

    #[test]
    fn absent_or_sqlite_is_the_data_directorys_jit_db() {
        assert_eq!(parse("").unwrap().database, None);
        assert_eq!(parse("database = \"sqlite\"").unwrap().database, None);
        let errs = parse("database_password_file = \"pw\"").unwrap_err();
        assert!(errs[0].contains("not a PostgreSQL database"), "{errs:?}");
    }

    #[test]
    fn postgres_settings_are_parsed_with_their_files_and_replica_name() {
        let c = parse(
            "listen = \"127.0.0.1:9443\"\ndatabase = \"host=/run/postgresql dbname=jit user=jit-ca\"\n\
             database_password_file = \"db.password\"\ndatabase_ca = \"/etc/ssl/db-ca.pem\"\n",
        )
        .unwrap();
        let s = c.database.unwrap();
        assert_eq!(s.conninfo, "host=/run/postgresql dbname=jit user=jit-ca");
        assert_eq!(s.password_file.unwrap(), Path::new("/d/db.password"));
        assert_eq!(s.ca_file.unwrap(), Path::new("/etc/ssl/db-ca.pem"));
        assert!(s.replica.ends_with(":9443"), "{}", s.replica);
        let c = parse(
            "database = \"postgres://jit@db.example.com:5432/jit?sslmode=verify-full\"\nreplica_name = \"ca1\"",
        )
        .unwrap();
        assert_eq!(c.database.unwrap().replica, "ca1");
        let c = parse("database = \"postgresql://jit@[::1]:25432/jit\"").unwrap();
        assert!(c.database.is_some(), "loopback needs no TLS");
    }

    #[test]
    fn a_password_in_the_settings_is_refused_naming_the_key_to_use() {
        for db in [
            "postgres://jit:s3cret@db.example.com/jit?sslmode=require",
            "host=db.example.com sslmode=require password=s3cret",
            "postgres://jit@db.example.com/jit?sslmode=require&password=s3cret",
            // Unencoded /, ? or # in the password must not split it into host or query.
            "postgres://jit:s3cret?x@db/jit",
            "postgres://jit:s3cret/x@db/jit",
            "postgres://jit:s3cret#x@db/jit",
            "postgres://jit:s3cret:1@db/jit",
        ] {
            let errs = parse(&format!("database = \"{db}\"")).unwrap_err();
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(errs[0].contains("database_password_file"), "{errs:?}");
            assert!(
                !errs[0].contains("s3cret"),
                "the secret is not echoed: {errs:?}"
            );
        }
    }

    #[test]
    fn a_password_with_url_delimiters_is_never_echoed() {
        for (db, frags) in [
            // ("pa" itself is in "password": its quoted or delimited forms are looked for.)
            (
                "postgres://jit:pa?ss@db/jit",
                vec!["\"pa", ":pa", "pa?", "ss@", "\"ss"],
            ),
            (
                "postgres://jit:p/w@db/jit",
                vec!["p/w", "\"p\"", ":p", "\"w"],
            ),
            ("postgres://jit:zq#x@db/jit", vec!["zq"]),
            ("postgres://jit:zq@x@db/jit", vec!["zq"]),
        ] {
            let errs = parse(&format!("database = \"{db}\"")).unwrap_err();
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(errs[0].contains("database_password_file"), "{errs:?}");
            for f in frags {
                assert!(!errs[0].contains(f), "{db}: {f} echoed: {errs:?}");
            }
            assert!(!errs[0].contains("jit:"), "{errs:?}");
        }
        // A bad port never echoes the host spec it came with.
        let errs = parse("database = \"postgres://jit@secrethost:12ab/jit\"").unwrap_err();
        assert!(errs[0].contains("not a number"), "{errs:?}");
        assert!(!errs[0].contains("secrethost"), "{errs:?}");
    }

    #[test]
    fn plain_text_to_a_network_host_is_refused() {
        for db in [
            "postgres://jit@db.example.com/jit",
            "postgres://jit@db.example.com/jit?sslmode=prefer",
            "host=10.0.0.5 dbname=jit sslmode=disable",
            "host=/run/postgresql,db.example.com sslmode=allow",
            // hostaddr is where the connection goes, over TCP, whatever host says.
            "host=/run/postgresql hostaddr=10.0.0.5 dbname=jit",
            "host=localhost hostaddr=10.0.0.5 sslmode=disable",
            "hostaddr=10.0.0.5 dbname=jit",
            "postgres://jit@localhost/jit?hostaddr=10.0.0.5&sslmode=disable",
            "postgres://jit@%2Frun%2Fpostgresql/jit?hostaddr=10.0.0.5",
        ] {
            let errs = parse(&format!("database = \"{db}\"")).unwrap_err();
            assert_eq!(errs.len(), 1, "{db}: {errs:?}");
            assert!(errs[0].contains("sslmode=verify-full"), "{errs:?}");
        }
        for ok in [
            "host=/tmp/x port=25432 user=jit",
            "host=localhost dbname=jit sslmode=disable",
            "host=127.0.0.1 dbname=jit",
            "host=db.example.com sslmode=require",
            "host='db.example.com' sslmode = verify-ca",
            "host=localhost hostaddr=127.0.0.1 sslmode=disable",
            "host=db.example.com hostaddr=10.0.0.5 sslmode=verify-full",
        ] {
            assert!(parse(&format!("database = \"{ok}\"")).is_ok(), "{ok}");
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let one = |t: &str| {
            let e = parse(t).unwrap_err();
            assert_eq!(e.len(), 1, "{e:?}");
            e[0].clone()
        };
        assert!(one("database = \"mysql://x\"").contains("not a PostgreSQL URL"));
        assert!(one("database = \"jit.db\"").contains("is neither \"sqlite\""));
        assert!(one("database = \"host=/x sslmode=maybe\"").contains("sslmode=maybe"));
        assert!(one("database = \"host='/x\"").contains("closing quote"));
        assert!(one("database = \"postgres://h:port/x\"").contains("not a number"));
        assert!(one("replica_name = \"a b\"").contains("replica_name"));
        assert!(one(&format!("replica_name = \"{}\"", "a".repeat(64))).contains("replica_name"));
        assert!(
            one("database = \"host=/x sslmode=disable\"\ndatabase_ca = \"ca.pem\"")
                .contains("database_ca")
        );
        assert!(one("databse = \"sqlite\"").contains("databse"));
    }
}
