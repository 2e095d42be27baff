//! Server process control: start `shuyuan serve` or the baseline as a child process (pinned
//! to the server cores with `taskset` when asked), wait until it listens, read its memory and
//! CPU time from `/proc`, and kill it when dropped, also after an error.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

/// How long a server gets to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Log lines at WARN or ERROR kept for the report.
const KEPT_WARNINGS: usize = 8;

/// What a server printed at WARN or above while it ran.
#[derive(Default)]
pub struct Warnings {
    pub count: u64,
    pub last: Vec<String>,
}

pub struct ServerProcess {
    pub name: String,
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub warnings: Arc<Mutex<Warnings>>,
}

/// How a server says where it listens, on which output.
pub enum Ready {
    /// Shuyuan's JSON log on stderr: `"shuyuan is serving"` with a `listen` field.
    ShuyuanLog,
    /// The baseline's stdout: `listening ADDR`.
    Line,
}

impl ServerProcess {
    /// Starts `program` with `args` and `envs` in `dir`, on `cpus` (`taskset -c`) when given.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        envs: &[(&str, String)],
        dir: &Path,
        cpus: Option<&str>,
        ready: Ready,
    ) -> anyhow::Result<ServerProcess> {
        let mut command = match cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpus).arg(program);
                command
            }
            None => Command::new(program),
        };
        command
            .args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let pid = child.id();
        let warnings = Arc::new(Mutex::new(Warnings::default()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (watched, drained): (Box<dyn Read + Send>, Box<dyn Read + Send>) = match ready {
            Ready::ShuyuanLog => (Box::new(stderr), Box::new(stdout)),
            Ready::Line => (Box::new(stdout), Box::new(stderr)),
        };
        // Both outputs are read to the end so the server never blocks on a full pipe.
        spawn_reader(drained, None, warnings.clone());
        spawn_reader(watched, Some(tx), warnings.clone());
        let line_to_addr = |line: &str| -> Option<String> {
            match ready {
                Ready::ShuyuanLog => {
                    let entry: serde_json::Value = serde_json::from_str(line).ok()?;
                    (entry["fields"]["message"] == "shuyuan is serving")
                        .then(|| entry["fields"]["listen"].as_str().map(str::to_owned))
                        .flatten()
                }
                Ready::Line => line.strip_prefix("listening ").map(str::to_owned),
            }
        };
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        let mut process = ServerProcess {
            name: name.to_owned(),
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            warnings,
        };
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line_to_addr(&line) {
                        process.addr = addr.parse().context("the listen address")?;
                        return Ok(process);
                    }
                }
                Err(_) => {
                    let status = process.child.try_wait().ok().flatten();
                    let last = process
                        .warnings
                        .lock()
                        .expect("not poisoned")
                        .last
                        .join("\n");
                    anyhow::bail!(
                        "{name} did not start (exit status {status:?}); its last warnings:\n{last}"
                    );
                }
            }
        }
    }

    /// Resident memory now (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        status_field(self.pid, "VmRSS:")
    }

    /// Peak resident memory since start or since [`ServerProcess::reset_peak`] (`VmHWM`).
    pub fn peak_kib(&self) -> u64 {
        status_field(self.pid, "VmHWM:")
    }

    /// Resets `VmHWM` to the current RSS (`clear_refs` 5, Linux ≥ 4.0, as root or the owner).
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// CPU time used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        crate::common::cpu_seconds(self.pid)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_reader(
    output: Box<dyn Read + Send>,
    lines_to: Option<std::sync::mpsc::Sender<String>>,
    warnings: Arc<Mutex<Warnings>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            // `main` prints the error that stops a server as a plain `error: …` line.
            if line.contains("\"WARN\"")
                || line.contains("\"ERROR\"")
                || line.contains("panicked")
                || line.starts_with("error: ")
            {
                let mut warnings = warnings.lock().expect("not poisoned");
                warnings.count += 1;
                if warnings.last.len() == KEPT_WARNINGS {
                    warnings.last.remove(0);
                }
                warnings.last.push(line.chars().take(400).collect());
            }
            if let Some(tx) = &lines_to {
                let _ = tx.send(line);
            }
        }
    });
}

fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Raises this process's file-descriptor limit (children inherit it) to at least `wanted`:
/// the hard limit too when allowed (root), else the soft limit up to the hard one.
pub fn raise_fd_limit(wanted: u64) -> anyhow::Result<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    if soft >= wanted {
        return Ok(soft);
    }
    if hard < wanted && rlimit::Resource::NOFILE.set(wanted, wanted).is_ok() {
        return Ok(wanted);
    }
    let raised = rlimit::increase_nofile_limit(wanted)?;
    Ok(raised)
}

/// Pins this process (all threads started from now on) to `cpus` with `taskset`.
pub fn pin_self(cpus: &str) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset")?;
    anyhow::ensure!(status.success(), "taskset -p -c {cpus} failed");
    Ok(())
}
