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
        if inc == UNREAD {
            out.push(unread(name, i + 1, line.trim(), None));
            continue;
        }
        for l in inc.lines() {
            let nested = match (at_include(l), rule(l)) {
                (Some(n), _) => Some(n),
                (None, Some(r)) if matches!(r.control.as_str(), "include" | "substack") => {
                    (r.kind == "session").then_some(r.module)
                }
                (None, Some(r)) if r.kind == "session" => {
                    out.push(Step {
                        rule: r,
                        line: i + 1,
                        text: l.trim(),
                        via: Some(name.to_string()),
                    });
                    None
                }
                _ => None,
            };
            if let Some(n) = nested {
                out.push(unread(n, i + 1, l.trim(), Some(name.to_string())));
            }
        }
    }
    out
}

/// The text [`read_includes`] gives a file it did not read: not a plain name under the
/// directory, unreadable, not UTF-8, larger than [`MAX_INCLUDE`] or past the 32-file bound.
/// (A NUL byte never appears in a PAM file that was read.)
pub const UNREAD: &str = "\0unread";

/// A step for an include that was not followed (see [`is_unread`]): what it runs is unknown.
fn unread<'a>(name: &'a str, line: usize, text: &'a str, via: Option<String>) -> Step<'a> {
    Step {
        rule: Rule {
            kind: "session",
            control: "include".to_string(),
            module: name,
            args: Vec::new(),
        },
        line,
        text,
        via,
    }
}

/// Whether `s` is an include that was not followed (an included file that could not be read,
/// or an include inside an included file): it may run anything, `pam_env.so user_readenv=1`
/// included.
pub fn is_unread(s: &Step<'_>) -> bool {
    matches!(s.rule.control.as_str(), "include" | "substack")
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
/// no `..`), at most [`MAX_INCLUDE`] bytes each, at most 32 files. Every other one (a path,
/// unreadable, not UTF-8, larger, past the bound) is listed with the text [`UNREAD`], so that
/// the placement checks treat what it runs as unknown instead of as nothing.
pub fn read_includes(dir: &std::path::Path, text: &str) -> Vec<(String, String)> {
    use std::io::Read as _;
    let read = |n: &str| -> Option<String> {
        if n.contains('/') || n == ".." || n == "." {
            return None;
        }
        let f = std::fs::File::open(dir.join(n)).ok()?;
        let mut s = String::new();
        f.take(MAX_INCLUDE as u64 + 1).read_to_string(&mut s).ok()?;
        (s.len() <= MAX_INCLUDE && !s.contains('\0')).then_some(s)
    };
    included_names(text)
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let t = if i < 32 { read(n) } else { None };
            (n.to_string(), t.unwrap_or_else(|| UNREAD.to_string()))
        })
        .collect()
}
