//! Reading a PAM service file's session stack the way Linux-PAM runs it, for the placement
//! of pam_jit's session line: comments, bracketed controls, `-session`, CRLF line ends, and
//! `@include X` / `session include X` / `session substack X` followed one level (files
//! under `/etc/pam.d`, bounded in size).

/// Largest included file read (bytes).
pub const MAX_INCLUDE: usize = 64 * 1024;

/// One PAM rule: its type (without a leading `-`), control, module path and arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule<'a> {
    pub kind: &'a str,
    /// The control: `required`, `include`, or the bracketed text (with its brackets).
    pub control: String,
    pub module: &'a str,
    pub args: Vec<&'a str>,
}

/// Parses one line: a `#` starts a comment anywhere; a control in brackets may contain
/// spaces. None: a comment, an empty line, an `@include` (see [`at_include`]).
pub fn rule(line: &str) -> Option<Rule<'_>> {
    let line = line.split('#').next().unwrap_or("");
    let mut t = line.split_whitespace();
    let kind = t.next()?;
    if kind.starts_with('@') {
        return None;
    }
    let first = t.next()?;
    let mut control = first.to_string();
    if first.starts_with('[') && !first.ends_with(']') {
        loop {
            let next = t.next()?;
            control.push(' ');
            control.push_str(next);
            if next.ends_with(']') {
                break;
            }
        }
    }
    let module = t.next()?;
    Some(Rule {
        kind: kind.trim_start_matches('-'),
        control,
        module,
        args: t.collect(),
    })
}

/// The file an `@include X` line names.
pub fn at_include(line: &str) -> Option<&str> {
    let line = line.split('#').next().unwrap_or("");
    let mut t = line.split_whitespace();
    (t.next()? == "@include").then(|| t.next()).flatten()
}

/// The numeric jumps of a bracketed control (`[success=2 default=ignore]` → 2).
pub fn jumps(control: &str) -> impl Iterator<Item = usize> + '_ {
    control
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=').and_then(|(_, v)| v.parse().ok()))
}

/// The file name of a module path.
pub fn module_name(module: &str) -> &str {
    module.rsplit('/').next().unwrap_or(module)
}

/// One session rule of the flattened stack.
#[derive(Debug)]
pub struct Step<'a> {
    pub rule: Rule<'a>,
    /// 1-based line in the main file (of the include line, for an included rule).
    pub line: usize,
    /// The line's text (trimmed).
    pub text: &'a str,
    /// The included file it comes from (None: the main file).
    pub via: Option<String>,
}

/// The session rules of `text` in order, with `@include X`, `session include X` and
/// `session substack X` replaced by X's session rules (read with `include`, one level).
/// `texts` keeps the included files' text alive.
pub fn session_steps<'a>(text: &'a str, texts: &'a [(String, String)]) -> Vec<Step<'a>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = match (at_include(line), rule(line)) {
            (Some(n), _) => Some(n),
            (None, Some(r))
                if r.kind == "session" && matches!(r.control.as_str(), "include" | "substack") =>
            {
                Some(r.module)
            }
            (None, Some(r)) if r.kind == "session" => {
                out.push(Step {
                    rule: r,
                    line: i + 1,
                    text: line.trim(),
                    via: None,
                });
                None
            }
            _ => None,
        };
        let Some(name) = name else { continue };
        let Some((_, inc)) = texts.iter().find(|(n, _)| n == name) else {
            continue;
        };
        for l in inc.lines() {
            if let Some(r) = rule(l)
                && r.kind == "session"
                && !matches!(r.control.as_str(), "include" | "substack")
            {
                out.push(Step {
                    rule: r,
                    line: i + 1,
                    text: l.trim(),
                    via: Some(name.to_string()),
                });
            }
        }
    }
    out
}

/// The names of the files `text` includes (for the caller to read).
pub fn included_names(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    for line in text.lines() {
        let name = match (at_include(line), rule(line)) {
            (Some(n), _) => Some(n),
            (None, Some(r)) if matches!(r.control.as_str(), "include" | "substack") => {
                Some(r.module)
            }
            _ => None,
        };
        if let Some(n) = name
            && !names.contains(&n)
        {
            names.push(n);
        }
    }
    names
}

/// Reads the included files of `text` from `dir` (`/etc/pam.d`): plain names only (no `/`,
/// no `..`), at most [`MAX_INCLUDE`] bytes each; unreadable ones are left out.
pub fn read_includes(dir: &std::path::Path, text: &str) -> Vec<(String, String)> {
    use std::io::Read as _;
    included_names(text)
        .into_iter()
        .filter(|n| !n.contains('/') && *n != ".." && *n != ".")
        .take(32)
        .filter_map(|n| {
            let f = std::fs::File::open(dir.join(n)).ok()?;
            let mut s = String::new();
            f.take(MAX_INCLUDE as u64).read_to_string(&mut s).ok()?;
            Some((n.to_string(), s))
        })
        .collect()
}
