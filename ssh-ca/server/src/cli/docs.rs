//! Man pages and shell completions for packaging (`jit-ca generate-docs --out DIR`).

use std::path::Path;

use clap::CommandFactory as _;

use super::args::Cli;
use crate::error::CaError;

/// Writes `man/jit-ca*.1` and `completions/` (bash, zsh, fish) under `out`.
pub fn generate_docs(out: &Path) -> Result<(), CaError> {
    let io = |p: &Path, e: std::io::Error| CaError::File {
        path: p.to_path_buf(),
        detail: e.to_string(),
    };
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man).map_err(|e| io(&man, e))?;
    std::fs::create_dir_all(&comp).map_err(|e| io(&comp, e))?;
    let cmd = Cli::command();
    write_man(&cmd, "jit-ca", &man)?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let mut c = Cli::command();
        clap_complete::generate_to(shell, &mut c, "jit-ca", &comp).map_err(|e| io(&comp, e))?;
    }
    Ok(())
}

fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> Result<(), CaError> {
    if cmd.is_hide_set() {
        return Ok(());
    }
    let cmd = cmd
        .clone()
        .display_name(name.to_string())
        .bin_name(name.replace('-', " ").replacen("jit ca", "jit-ca", 1));
    let mut buf = Vec::new();
    let path = dir.join(format!("{name}.1"));
    clap_mangen::Man::new(without_help_page(cmd.clone()))
        .render(&mut buf)
        .map_err(|e| CaError::File {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    if cmd.get_after_help().is_none() && cmd.get_after_long_help().is_none() {
        buf.extend_from_slice(examples(name).as_bytes());
    }
    buf.extend_from_slice(see_also(name).as_bytes());
    std::fs::write(&path, buf).map_err(|e| CaError::File {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_man(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

/// clap's `help` subcommand has no page of its own: do not list `jit-ca-help(1)`.
fn without_help_page(mut cmd: clap::Command) -> clap::Command {
    cmd.build();
    cmd.mut_subcommands(|s| {
        if s.get_name() == "help" {
            s.hide(true)
        } else {
            s
        }
    })
}

/// The SEE ALSO section: the program's page (from a subcommand's), the files it reads and
/// the other programs, all shipped by the jit packages.
fn see_also(name: &str) -> String {
    let mut pages = Vec::new();
    if name != "jit-ca" {
        pages.push("jit-ca (1)");
    }
    pages.extend([
        "policy.toml (5)",
        "host.toml (5)",
        "jit (1)",
        "jit-host (8)",
        "pam_jit (8)",
    ]);
    let lines: Vec<String> = pages
        .iter()
        .map(|p| format!(".BR {}", p.replace('-', "\\-")))
        .collect();
    format!(".SH \"SEE ALSO\"\n{}\n", lines.join(",\n"))
}

/// An EXAMPLES section for the program's own page when its help has none (a subcommand's
/// examples are its `after_help`, which clap_mangen renders).
fn examples(name: &str) -> String {
    if name != "jit-ca" {
        return String::new();
    }
    let lines = [
        "jit-ca init --dir /var/lib/jit-ca",
        "jit-ca user add alice --key alice.pub --group dev --dir /var/lib/jit-ca",
        "jit-ca policy check --dir /var/lib/jit-ca",
        "jit-ca host-config --dir /var/lib/jit-ca > host.toml",
        "jit-ca serve --dir /var/lib/jit-ca",
        "jit-ca audit verify --dir /var/lib/jit-ca",
    ];
    let body: Vec<String> = lines.iter().map(|l| l.replace('-', "\\-")).collect();
    format!(".SH EXAMPLES\n.EX\n{}\n.EE\n", body.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: no page names a `help` page that does not exist; every page ends in SEE
    /// ALSO; jit-ca(1) has examples.
    #[test]
    fn pages_name_no_help_page_and_end_in_see_also() {
        let dir = tempfile::tempdir().unwrap();
        generate_docs(dir.path()).unwrap();
        let mut n = 0;
        for e in std::fs::read_dir(dir.path().join("man")).unwrap() {
            let path = e.unwrap().path();
            let page = std::fs::read_to_string(&path).unwrap();
            assert!(!page.contains("help(1)"), "{}: {page}", path.display());
            assert!(page.contains("\n.SH \"SEE ALSO\"\n"), "{}", path.display());
            n += 1;
        }
        assert!(n > 10);
        let top = std::fs::read_to_string(dir.path().join("man/jit-ca.1")).unwrap();
        assert!(top.contains("jit\\-ca\\-user(1)"), "{top}");
        // Examples: the help's own (clap_mangen's EXTRA), else the generator's.
        assert!(
            top.contains("\n.SH EXTRA\nExample")
                || top.contains("\n.SH EXAMPLES\n.EX\njit\\-ca init \\-\\-dir /var/lib/jit\\-ca\n"),
            "{top}"
        );
        assert!(top.ends_with(
            ".SH \"SEE ALSO\"\n.BR policy.toml (5),\n.BR host.toml (5),\n.BR jit (1),\n\
             .BR jit\\-host (8),\n.BR pam_jit (8)\n"
        ));
        let user = std::fs::read_to_string(dir.path().join("man/jit-ca-user.1")).unwrap();
        assert!(user.contains("jit\\-ca\\-user\\-add(1)"), "{user}");
        assert!(
            user.contains(".SH \"SEE ALSO\"\n.BR jit\\-ca (1),\n"),
            "{user}"
        );
    }
}
