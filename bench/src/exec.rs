//! Programs timed per call (`exec`) and the disk's sync latency (`fsync`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::json;

use crate::stats::summary;

// ---------------------------------------------------------------------------------------
// Programs per call

pub(crate) fn exec(
    runs: usize,
    cmds: &[String],
    envs: &[String],
    expect: i32,
    expect_stdout: Option<&str>,
) -> Result<serde_json::Value> {
    let argvs: Vec<Vec<&str>> = cmds
        .iter()
        .map(|c| c.split_whitespace().collect::<Vec<_>>())
        .collect();
    if argvs.iter().any(Vec::is_empty) {
        bail!("--cmd must not be empty");
    }
    let envs: Vec<(&str, &str)> = envs
        .iter()
        .map(|e| {
            e.split_once('=')
                .ok_or_else(|| anyhow!("--env {e}: expected NAME=VALUE"))
        })
        .collect::<Result<_>>()?;
    let run = |argv: &[&str], capture: bool| -> Result<(Duration, String)> {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]).envs(envs.iter().copied());
        c.stdin(Stdio::null()).stderr(Stdio::null());
        c.stdout(if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let t = Instant::now();
        let out = c
            .output()
            .with_context(|| format!("running {}", argv.join(" ")))?;
        let d = t.elapsed();
        if out.status.code() != Some(expect) {
            bail!(
                "{} exited with {} (expected {expect})",
                argv.join(" "),
                out.status
            );
        }
        Ok((d, String::from_utf8_lossy(&out.stdout).into_owned()))
    };
    // One checked, unmeasured run each (warms the page cache too).
    for argv in &argvs {
        let (_, stdout) = run(argv, true)?;
        if let Some(want) = expect_stdout
            && !stdout.contains(want)
        {
            bail!(
                "{}: stdout {:?} does not contain {want:?}",
                argv.join(" "),
                stdout.trim()
            );
        }
    }
    let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(runs); argvs.len()];
    for _ in 0..runs {
        for (i, argv) in argvs.iter().enumerate() {
            let (d, _) = run(argv, false)?;
            samples[i].push(d.as_micros() as u64);
        }
    }
    // Paired differences against the first command: the robust way to compare on a noisy
    // machine (each pair ran back to back).
    let base = samples[0].clone();
    let results: Vec<serde_json::Value> = samples
        .into_iter()
        .zip(cmds)
        .map(|(s, cmd)| {
            let mut diffs: Vec<i64> = s
                .iter()
                .zip(&base)
                .map(|(a, b)| *a as i64 - *b as i64)
                .collect();
            diffs.sort_unstable();
            let median_diff = diffs[diffs.len() / 2] as f64 / 1000.0;
            json!({ "cmd": cmd, "time": summary(s), "median_paired_diff_ms": median_diff })
        })
        .collect();
    Ok(json!({ "runs": runs, "results": results }))
}

// Disk

pub(crate) fn fsync(dir: &Path, count: usize) -> Result<serde_json::Value> {
    use std::io::Write as _;
    use std::os::unix::fs::FileExt as _;
    let path = dir.join(format!(".jit-bench-fsync-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    // Appending (the file grows: a WAL before its first reset) ...
    let mut append = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let t = Instant::now();
        f.write_all(&[b'x'; 128])?;
        f.sync_data()?;
        append.push(t.elapsed().as_micros() as u64);
    }
    drop(f);
    // ... and overwriting in place (a WAL reused after a checkpoint).
    let f = std::fs::OpenOptions::new().write(true).open(&path)?;
    let mut overwrite = Vec::with_capacity(count);
    for i in 0..count.max(1) {
        let t = Instant::now();
        f.write_all_at(&[b'y'; 128], (i * 128) as u64)?;
        f.sync_data()?;
        overwrite.push(t.elapsed().as_micros() as u64);
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(
        json!({ "dir": dir, "fdatasync": summary(append), "fdatasync_overwrite": summary(overwrite) }),
    )
}
