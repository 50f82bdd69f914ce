//! `generate-docs --out DIR`: man pages (one per subcommand too) and shell completions.

use std::path::Path;

use clap_complete::Shell;

/// Writes `DIR/man/NAME.1`, `DIR/man/NAME-SUB.1` and `DIR/completions/{NAME.bash,_NAME,NAME.fish}`.
pub fn generate(mut cmd: clap::Command, out: &Path) -> std::io::Result<()> {
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    cmd.build();
    write_man(&cmd, &man)?;
    let name = cmd.get_name().to_string();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, &name, &comp)?;
    }
    Ok(())
}

/// One page per command; after `Command::build` a subcommand's display name is
/// `parent-sub`, which names its page.
fn write_man(cmd: &clap::Command, dir: &Path) -> std::io::Result<()> {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    let mut buf = Vec::new();
    clap_mangen::Man::new(without_help_page(cmd.clone())).render(&mut buf)?;
    buf.extend_from_slice(see_also(&name).as_bytes());
    std::fs::write(dir.join(format!("{name}.1")), buf)?;
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_man(sub, dir)?;
    }
    Ok(())
}

/// clap's `help` subcommand has no page of its own: do not list `jit-help(1)`.
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

/// The SEE ALSO section: pages that ship (jit-ca(1) and jit-host(8) in their packages) and
/// OpenSSH's.
fn see_also(name: &str) -> String {
    let mut pages = Vec::new();
    if name != "jit" {
        pages.push("jit (1)".to_string());
    }
    pages.extend(
        [
            "jit-ca (1)",
            "jit-host (8)",
            "ssh (1)",
            "ssh-agent (1)",
            "ssh-keygen (1)",
        ]
        .map(String::from),
    );
    let lines: Vec<String> = pages
        .iter()
        .map(|p| format!(".BR {}", p.replace('-', "\\-")))
        .collect();
    format!(".SH \"SEE ALSO\"\n{}\n", lines.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    /// Issue 13: jit(1) named jit-help(1), which never existed; every page ends in SEE ALSO.
    #[test]
    fn pages_name_no_help_page_and_end_in_see_also() {
        let dir = tempfile::tempdir().unwrap();
        generate(crate::cli::Cli::command(), dir.path()).unwrap();
        let mut n = 0;
        for e in std::fs::read_dir(dir.path().join("man")).unwrap() {
            let path = e.unwrap().path();
            let page = std::fs::read_to_string(&path).unwrap();
            assert!(!page.contains("help(1)"), "{}: {page}", path.display());
            assert!(page.contains("\n.SH \"SEE ALSO\"\n"), "{}", path.display());
            n += 1;
        }
        assert!(n > 5);
        let top = std::fs::read_to_string(dir.path().join("man/jit.1")).unwrap();
        assert!(top.contains("jit\\-request(1)"), "{top}");
        assert!(top.ends_with(
            ".SH \"SEE ALSO\"\n.BR jit\\-ca (1),\n.BR jit\\-host (8),\n.BR ssh (1),\n\
             .BR ssh\\-agent (1),\n.BR ssh\\-keygen (1)\n"
        ));
        let sub = std::fs::read_to_string(dir.path().join("man/jit-request.1")).unwrap();
        assert!(sub.contains(".SH \"SEE ALSO\"\n.BR jit (1),\n"), "{sub}");
    }
}
