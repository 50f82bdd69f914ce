//! Hidden `generate-docs --out DIR`: man pages (one per subcommand too) and completions.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::Cli;
use crate::failure::{Failure, Result};

/// Writes `DIR/man/*.8` and `DIR/completions/{jit-host.bash,_jit-host,jit-host.fish}`.
pub fn generate(out: &Path) -> Result<ExitCode> {
    let man = out.join("man");
    let comp = out.join("completions");
    for d in [&man, &comp] {
        fs::create_dir_all(d).map_err(|e| Failure::new(format!("{}: {e}", d.display())))?;
    }
    let cmd = Cli::command();
    write_man(&cmd, "jit-host", &man)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("jit-host-{}", sub.get_name());
        write_man(sub, &name, &man)?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut c = Cli::command();
        clap_complete::generate_to(shell, &mut c, "jit-host", &comp)
            .map_err(|e| Failure::new(format!("{}: {e}", comp.display())))?;
    }
    jit_common::outln!("wrote {} and {}", man.display(), comp.display());
    Ok(ExitCode::SUCCESS)
}

fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(without_help_page(
        cmd.clone().display_name(name.to_string()),
    ))
    .title(name.to_uppercase())
    .section("8")
    .render(&mut buf)
    .map_err(|e| Failure::new(e.to_string()))?;
    if cmd.get_after_help().is_none() && cmd.get_after_long_help().is_none() {
        buf.extend_from_slice(examples(name).as_bytes());
    }
    buf.extend_from_slice(see_also(name).as_bytes());
    let path = dir.join(format!("{name}.8"));
    fs::write(&path, buf).map_err(|e| Failure::new(format!("{}: {e}", path.display())))
}

/// clap's `help` subcommand has no page of its own: do not list `jit-host-help(8)`.
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

/// The SEE ALSO section: the program's page (from a subcommand's), the module and the file
/// they share (shipped in the jit-host package), the CA, and sshd's configuration.
fn see_also(name: &str) -> String {
    let mut pages = Vec::new();
    if name != "jit-host" {
        pages.push("jit-host (8)");
    }
    pages.extend([
        "host.toml (5)",
        "pam_jit (8)",
        "jit-ca (1)",
        "jit (1)",
        "sshd_config (5)",
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
    if name != "jit-host" {
        return String::new();
    }
    let lines = [
        "jit-host setup --sudo --sshd --dry-run",
        "jit-host setup --sudo --sshd",
        "jit-host sync",
        "jit-host check alice",
        "jit-host list",
        "jit-host setup --sudo --sshd --undo",
    ];
    let body: Vec<String> = lines.iter().map(|l| l.replace('-', "\\-")).collect();
    format!(".SH EXAMPLES\n.EX\n{}\n.EE\n", body.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: jit-host(8) named jit-host-help(8), which never existed; every page ends in
    /// SEE ALSO (pam_jit(8), host.toml(5)); jit-host(8) has examples.
    #[test]
    fn pages_name_no_help_page_and_end_in_see_also() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path()).unwrap();
        let mut n = 0;
        for e in fs::read_dir(dir.path().join("man")).unwrap() {
            let path = e.unwrap().path();
            let page = fs::read_to_string(&path).unwrap();
            assert!(!page.contains("help(8)"), "{}: {page}", path.display());
            assert!(page.contains("\n.SH \"SEE ALSO\"\n"), "{}", path.display());
            n += 1;
        }
        assert!(n > 5);
        let top = fs::read_to_string(dir.path().join("man/jit-host.8")).unwrap();
        assert!(top.contains("jit\\-host\\-sync(8)"), "{top}");
        // Examples: the help's own (clap_mangen's EXTRA), else the generator's.
        assert!(
            top.contains("\n.SH EXTRA\nExample") || top.contains("\n.SH EXAMPLES\n.EX\n"),
            "{top}"
        );
        assert!(top.ends_with(
            ".SH \"SEE ALSO\"\n.BR host.toml (5),\n.BR pam_jit (8),\n.BR jit\\-ca (1),\n\
             .BR jit (1),\n.BR sshd_config (5)\n"
        ));
        let sync = fs::read_to_string(dir.path().join("man/jit-host-sync.8")).unwrap();
        assert!(
            sync.contains(".SH \"SEE ALSO\"\n.BR jit\\-host (8),\n"),
            "{sync}"
        );
    }
}
