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
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section("8")
        .render(&mut buf)
        .map_err(|e| Failure::new(e.to_string()))?;
    let path = dir.join(format!("{name}.8"));
    fs::write(&path, buf).map_err(|e| Failure::new(format!("{}: {e}", path.display())))
}
