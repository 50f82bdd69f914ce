//! Programs timed per call (`exec`) and the disk's sync latency (`fsync`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::json;

use crate::stats::summary;

// ---------------------------------------------------------------------------------------
// Programs per call

/// What `jit-bench exec` runs and checks.
#[derive(Debug)]
pub(crate) struct ExecSpec<'a> {
    pub(crate) runs: usize,
    pub(crate) cmds: &'a [String],
    pub(crate) envs: &'a [String],
    pub(crate) expect: i32,
    pub(crate) expect_stdout: Option<&'a str>,
    /// Run before each measured sample (unmeasured), e.g. to remove what the command stored.
    pub(crate) before: Option<&'a str>,
    /// Workers running the (single) command at once; `{w}` in it is the worker number.
    pub(crate) parallel: usize,
}

/// One timed run of a command line: (wall time, stdout if captured).
type Runner<'a> = dyn Fn(&[&str], i32, bool) -> Result<(Duration, String)> + Sync + 'a;

fn split(cmd: &str) -> Vec<&str> {
    cmd.split_whitespace().collect()
}

pub(crate) fn exec(spec: &ExecSpec<'_>) -> Result<serde_json::Value> {
    let argvs: Vec<Vec<&str>> = spec.cmds.iter().map(|c| split(c)).collect();
    if argvs.iter().any(Vec::is_empty) {
        bail!("--cmd must not be empty");
    }
    let before = spec.before.map(split);
    if before.as_ref().is_some_and(Vec::is_empty) {
        bail!("--before must not be empty");
    }
    let envs: Vec<(&str, &str)> = spec
        .envs
        .iter()
        .map(|e| {
            e.split_once('=')
                .ok_or_else(|| anyhow!("--env {e}: expected NAME=VALUE"))
        })
        .collect::<Result<_>>()?;
    let (expect, expect_stdout) = (spec.expect, spec.expect_stdout);
    let run = |argv: &[&str], want: i32, capture: bool| -> Result<(Duration, String)> {
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
        if out.status.code() != Some(want) {
            bail!(
                "{} exited with {} (expected {want})",
                argv.join(" "),
                out.status
            );
        }
        Ok((d, String::from_utf8_lossy(&out.stdout).into_owned()))
    };
    let prepare = || -> Result<()> {
        if let Some(b) = &before {
            run(b, 0, false)?;
        }
        Ok(())
    };
    if spec.parallel > 1 {
        return parallel(spec, &argvs, &run);
    }
    // One checked, unmeasured run each (warms the page cache too).
    for argv in &argvs {
        prepare()?;
        let (_, stdout) = run(argv, expect, true)?;
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
    let runs = spec.runs;
    let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(runs); argvs.len()];
    for _ in 0..runs {
        for (i, argv) in argvs.iter().enumerate() {
            prepare()?;
            let (d, _) = run(argv, expect, false)?;
            samples[i].push(d.as_micros() as u64);
        }
    }
    // Paired differences against the first command: the robust way to compare on a noisy
    // machine (each pair ran back to back).
    let base = samples[0].clone();
    let results: Vec<serde_json::Value> = samples
        .into_iter()
        .zip(spec.cmds)
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

/// `{w}` in a command line replaced by the worker number.
fn for_worker(argv: &[&str], w: usize) -> Vec<String> {
    argv.iter()
        .map(|a| a.replace("{w}", &w.to_string()))
        .collect()
}

/// `--parallel N`: N workers (threads, each starting one process at a time) share RUNS runs
/// of the one command; reports runs per second of wall time, as a service using N cores
/// would be compared.
fn parallel(
    spec: &ExecSpec<'_>,
    argvs: &[Vec<&str>],
    run: &Runner<'_>,
) -> Result<serde_json::Value> {
    let [argv] = argvs else {
        bail!("--parallel takes exactly one --cmd");
    };
    if spec.before.is_some() {
        bail!("--parallel and --before do not go together");
    }
    let n = spec.parallel;
    let workers: Vec<Vec<String>> = (0..n).map(|w| for_worker(argv, w)).collect();
    // One checked, unmeasured run per worker.
    for w in &workers {
        let a: Vec<&str> = w.iter().map(String::as_str).collect();
        let (_, stdout) = run(&a, spec.expect, true)?;
        if let Some(want) = spec.expect_stdout
            && !stdout.contains(want)
        {
            bail!("{}: stdout does not contain {want:?}", a.join(" "));
        }
    }
    let runs = spec.runs.max(n);
    let t0 = Instant::now();
    let per_worker: Vec<Result<Vec<u64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                // RUNS split as evenly as it goes.
                let mine = runs / n + usize::from(i < runs % n);
                s.spawn(move || -> Result<Vec<u64>> {
                    let a: Vec<&str> = w.iter().map(String::as_str).collect();
                    let mut v = Vec::with_capacity(mine);
                    for _ in 0..mine {
                        let (d, _) = run(&a, spec.expect, false)?;
                        v.push(d.as_micros() as u64);
                    }
                    Ok(v)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a worker panicked")))
            })
            .collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    let mut all = Vec::with_capacity(runs);
    for r in per_worker {
        all.extend(r?);
    }
    Ok(json!({
        "runs": runs,
        "parallel": n,
        "wall_s": wall,
        "per_s": runs as f64 / wall,
        "results": [{ "cmd": spec.cmds[0], "time": summary(all) }],
    }))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(cmds: &'a [String], parallel: usize, before: Option<&'a str>) -> ExecSpec<'a> {
        ExecSpec {
            runs: 6,
            cmds,
            envs: &[],
            expect: 0,
            expect_stdout: None,
            before,
            parallel,
        }
    }

    #[test]
    fn workers_get_their_number() {
        assert_eq!(
            for_worker(&["cp", "a.pub", "kg-{w}.pub"], 3),
            vec!["cp", "a.pub", "kg-3.pub"]
        );
    }

    #[test]
    fn parallel_runs_every_run_and_reports_a_rate() {
        let dir = std::env::temp_dir().join(format!("jit-bench-par-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cmd = vec![format!("touch {}/w{{w}}", dir.display())];
        let out = exec(&spec(&cmd, 3, None)).unwrap();
        assert_eq!(out["runs"], 6);
        assert_eq!(out["parallel"], 3);
        assert_eq!(out["results"][0]["time"]["n"], 6);
        assert!(out["per_s"].as_f64().unwrap() > 0.0);
        for w in 0..3 {
            assert!(dir.join(format!("w{w}")).exists());
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let two = vec!["true".to_string(), "true".to_string()];
        assert!(exec(&spec(&two, 2, None)).is_err());
    }

    #[test]
    fn before_runs_ahead_of_every_sample() {
        let dir = std::env::temp_dir().join(format!("jit-bench-before-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mark = dir.join("mark");
        // The command fails unless `before` made the mark; it removes the mark itself.
        let cmd = vec![format!("rm {}", mark.display())];
        let before = format!("touch {}", mark.display());
        let out = exec(&spec(&cmd, 1, Some(&before))).unwrap();
        assert_eq!(out["results"][0]["time"]["n"], 6);
        assert!(exec(&spec(&cmd, 1, None)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
