//! Host selectors: exact host names or shell-style globs (`*`, `?`, `[a-z]`, `[!0-9]`),
//! compared without regard to ASCII case, as DNS does.

/// Longest selector or host name, in bytes (a DNS name is at most 253).
pub const MAX_LEN: usize = 253;

/// Checks that a selector is made of host-name characters and glob operators, with balanced
/// brackets.
pub fn validate_selector(sel: &str) -> Result<(), String> {
    if sel.is_empty() || sel.len() > MAX_LEN {
        return Err(format!(
            "host selector {sel:?} must be 1-{MAX_LEN} characters"
        ));
    }
    let ok_char = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'.' | b'-' | b'_' | b'*' | b'?' | b'[' | b']' | b'!')
    };
    if let Some(bad) = sel.bytes().find(|b| !ok_char(*b)) {
        return Err(format!(
            "host selector {sel:?} contains {:?}; use host-name characters and * ? [ ]",
            bad as char
        ));
    }
    let mut depth = 0i32;
    for b in sel.bytes() {
        match b {
            b'[' if depth == 0 => depth = 1,
            b']' if depth == 1 => depth = 0,
            b'[' | b']' => return Err(format!("host selector {sel:?} has unbalanced brackets")),
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("host selector {sel:?} has an unclosed ["));
    }
    Ok(())
}

/// Whether `host` matches `selector`. Invalid selectors match nothing.
pub fn matches(selector: &str, host: &str) -> bool {
    if host.is_empty() || host.len() > MAX_LEN || validate_selector(selector).is_err() {
        return false;
    }
    glob(selector.as_bytes(), host.as_bytes())
}

fn glob(pat: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking: linear in practice, no recursion.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((true, next)) = class(pat, p, text[t]) {
                        p = next;
                        t += 1;
                        continue;
                    }
                }
                c if c.eq_ignore_ascii_case(&text[t]) => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches one byte against the class starting at `pat[start] == b'['`; returns whether it
/// matched and the index after the closing `]`.
fn class(pat: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = pat.get(i) == Some(&b'!');
    if negate {
        i += 1;
    }
    let c = c.to_ascii_lowercase();
    let mut matched = false;
    while i < pat.len() && pat[i] != b']' {
        let lo = pat[i].to_ascii_lowercase();
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&b| b != b']') {
            let hi = pat[i + 2].to_ascii_lowercase();
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
    if i >= pat.len() {
        return None;
    }
    Some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_globs() {
        assert!(matches("db-1", "db-1"));
        assert!(matches("db-1", "DB-1"));
        assert!(!matches("db-1", "db-10"));
        assert!(matches("db-*", "db-10"));
        assert!(matches("db-*", "db-"));
        assert!(!matches("db-*", "web-1"));
        assert!(matches("*.prod.example.com", "db1.prod.example.com"));
        assert!(!matches("*.prod.example.com", "prod.example.com"));
        assert!(matches("web-?", "web-3"));
        assert!(!matches("web-?", "web-33"));
        assert!(matches("web-[0-9]", "web-7"));
        assert!(!matches("web-[0-9]", "web-a"));
        assert!(matches("web-[!0-9]", "web-a"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
    }

    #[test]
    fn invalid_selectors_match_nothing() {
        assert!(!matches("db-[", "db-["));
        assert!(!matches("db 1", "db 1"));
        assert!(!matches("", ""));
        assert!(validate_selector("db/1").is_err());
        assert!(validate_selector("a]").is_err());
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let pat = "*a*a*a*a*a*a*a*a*b";
        let host = "a".repeat(200);
        assert!(!matches(pat, &host));
    }
}
