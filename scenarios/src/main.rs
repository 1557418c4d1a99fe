//! The `irqsim` command: run, validate, describe scenarios and render reports.
//!
//! Exit codes: 0 success; 2 bad input (scenario errors, unreadable files, bad arguments);
//! 1 internal error (a bug in irqsim, reported with the seed that reproduces it).
//!
//! Input files are read only when they are regular files of at most
//! [`SCENARIO_SIZE_MAX`] bytes (a named pipe, a device or a folder is refused before it is
//! opened); the report folder is checked and staged before the run and replaced as a whole
//! after it (`reports::ReportDir`). docs/bad-input.md lists every kind of bad input and
//! what it gets.
//!
//! For tests only: `IRQSIM_TEST_PAUSE_AT=write` makes `irqsim run` pause for a minute after
//! the first report file is written into the staging folder, and `IRQSIM_TEST_PAUSE_AT=switch`
//! right before the staging folder is switched into place, each after printing
//! `irqsim: test pause at POINT` to standard error, so that a test can kill it there.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use scenarios::{catalog, estimate, runner, shell};

/// irqsim: a discrete-event simulator of interrupt delivery at scale.
///
/// With no arguments, runs the built-in flagship scenario and writes its report.
#[derive(Debug, Parser)]
#[command(name = "irqsim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario and write report.json, summary.md, summary.txt, points.csv and perf.json.
    Run {
        /// Scenario file (YAML). Leave out with --builtin.
        file: Option<PathBuf>,
        /// Run a built-in catalog scenario instead of a file (see `irqsim catalog`).
        #[arg(long, conflicts_with = "file")]
        builtin: Option<String>,
        /// Seed of every random stream (default: the scenario's `seed`, else 1).
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory (default: irqsim-out/NAME, NAME being the scenario name).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Refuse a scenario whose estimated memory exceeds this (bytes, or K, M, G, T in
        /// powers of 1024; default: half the machine's memory).
        #[arg(long, value_parser = estimate::parse_memory_size)]
        max_memory: Option<u64>,
    },
    /// Check scenario files and report every problem; runs nothing.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the scenario format (for yaml-language-server).
    Schema,
    /// List the built-in scenarios, or print one with --show NAME.
    Catalog {
        /// Print this scenario's YAML.
        #[arg(long)]
        show: Option<String>,
    },
    /// Re-render summary.md, summary.txt and points.csv from a report.json (or its directory).
    Report {
        /// report.json or the directory holding it.
        path: PathBuf,
    },
}

/// How a command failed.
enum Failure {
    /// The user's input is wrong (exit 2).
    Input(String),
    /// irqsim is wrong (exit 1).
    Internal(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command =
        cli.command.unwrap_or(Command::Run { file: None, builtin: None, seed: None, out: None, max_memory: None });
    // A panic is a bug in irqsim: report it as an internal error (exit 1), not a crash.
    std::panic::set_hook(Box::new(|info| say(&format!("irqsim: internal error (a bug in irqsim): {info}"))));
    let result = std::panic::catch_unwind(|| execute(command)).unwrap_or_else(|_| {
        Err(Failure::Internal(
            "the run panicked; the message above says where. Please report it with the scenario and seed.".into(),
        ))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(message)) => {
            say(&message);
            ExitCode::from(2)
        }
        Err(Failure::Internal(message)) => {
            say(&format!("irqsim: internal error: {message}"));
            ExitCode::from(1)
        }
    }
}

/// Writes a line to standard error; if even that fails (`2>/dev/full`) there is no one
/// left to tell, and the exit code still says what happened.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// Writes `text` to standard output: a full disk (`>/dev/full`) is an error that says so;
/// a closed pipe (`| head`) ends the output quietly.
fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Input(format!("error: cannot write to standard output: {}", reports::io_reason(&e))))
        }
        _ => Ok(()),
    }
}

/// The largest scenario file read. A scenario is written by hand and a few KiB long (the
/// largest in the catalog is under 3 KiB); 16 MiB is thousands of times that, still parses
/// in well under a second, and refuses a wrong file (a log, an image, a disk image) before
/// it is read whole.
const SCENARIO_SIZE_MAX: u64 = 16 << 20;

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    reports::read_limited(path, SCENARIO_SIZE_MAX, "a scenario is a hand-written file of a few KiB")
        .map_err(|e| Failure::Input(format!("error: {e}")))
}

fn load(label: &str, bytes: &[u8]) -> Result<scenarios::Scenario, Failure> {
    let text = std::str::from_utf8(bytes).map_err(|e| Failure::Input(not_utf8(label, bytes, &e)))?;
    let scenario = scenarios::load(label, text).map_err(|e| Failure::Input(e.to_string()))?;
    for w in &scenario.warnings {
        say(&format!("warning: {w}"));
    }
    Ok(scenario)
}

/// The encoding error in `bytes` at its line and column (in characters), with the bytes.
fn not_utf8(label: &str, bytes: &[u8], e: &std::str::Utf8Error) -> String {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return format!("error: {label}:1:1: .: the file is UTF-16 text; save it as UTF-8");
    }
    let valid = &bytes[..e.valid_up_to()];
    let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
    // Everything before the bad bytes is valid UTF-8, so this counts characters.
    let column = String::from_utf8_lossy(&valid[line_start..]).chars().count() + 1;
    let end = e.valid_up_to() + e.error_len().unwrap_or(bytes.len() - e.valid_up_to()).min(4);
    let shown: Vec<String> = bytes[e.valid_up_to()..end].iter().map(|b| format!("0x{b:02x}")).collect();
    let what = if e.error_len().is_none() { "ends in the middle of a character" } else { "is not valid UTF-8" };
    format!(
        "error: {label}:{line}:{column}: .: not UTF-8 text: the byte sequence {} {what}; a scenario file must be \
         UTF-8 text",
        shown.join(" ")
    )
}

fn execute(command: Command) -> Result<(), Failure> {
    match command {
        Command::Run { file, builtin, seed, out, max_memory } => run(file, builtin, seed, out, max_memory),
        Command::Validate { files } => {
            let mut failed = 0;
            for file in &files {
                let label = file.display().to_string();
                match read_file(file).and_then(|bytes| load(&label, &bytes)) {
                    Ok(s) => {
                        print(&format!(
                            "{label}: ok ({} devices, {} CPUs)\n",
                            s.platform.devices.len(),
                            s.platform.cpu_count
                        ))?;
                    }
                    Err(Failure::Input(m) | Failure::Internal(m)) => {
                        say(&m);
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                Err(Failure::Input(format!("{failed} of {} files have errors", files.len())))
            } else {
                Ok(())
            }
        }
        Command::Schema => print(&scenarios::schema::json_schema()),
        Command::Catalog { show } => match show {
            Some(name) => {
                let text = catalog::get(&name).ok_or_else(|| unknown_builtin(&name))?;
                print(text)
            }
            None => {
                let mut list = String::new();
                for (name, text) in catalog::CATALOG {
                    let description = scenarios::load(name, text).map(|s| s.description).unwrap_or_default();
                    let first = description.split(". ").next().unwrap_or("").trim().trim_end_matches('.');
                    list.push_str(&format!("{name:<20} {first}\n"));
                }
                print(&list)
            }
        },
        Command::Report { path } => {
            let file = if path.is_dir() { path.join("report.json") } else { path };
            let report = reports::read_report(&file).map_err(|e| Failure::Input(format!("error: {e}")))?;
            let dir = file.parent().unwrap_or(Path::new("."));
            let write = |name: &str, text: String| {
                reports::write_atomic(&dir.join(name), text.as_bytes()).map_err(|e| {
                    Failure::Input(format!(
                        "error: cannot write {}: {}",
                        dir.join(name).display(),
                        reports::io_reason(&e)
                    ))
                })
            };
            write("summary.md", reports::markdown(&report))?;
            write("summary.txt", reports::text(&report))?;
            write("points.csv", reports::csv(&report))?;
            print(&format!(
                "wrote {}, {} and {}\n",
                dir.join("summary.md").display(),
                dir.join("summary.txt").display(),
                dir.join("points.csv").display()
            ))
        }
    }
}

/// Refuses a scenario whose estimated memory exceeds `max_memory` (default half the
/// machine's), and says up front when its event count is enormous.
fn check_size(scenario: &scenarios::Scenario, label: &str, max_memory: Option<u64>) -> Result<(), Failure> {
    let (limit, whose) = match max_memory {
        Some(limit) => (limit, "--max-memory"),
        None => (estimate::default_max_memory_bytes(), "--max-memory's default, half the machine's memory,"),
    };
    let events = estimate::event_count(scenario);
    if events > estimate::EVENT_COUNT_WARN {
        eprintln!(
            "irqsim: {label}: about {events:.2e} events to simulate (4 per interrupt: the queues' rates x {}); this will take long (a few million events per second); set event_limit or a shorter duration to stop earlier",
            scenario.duration
        );
    }
    let need = estimate::memory_bytes(scenario);
    if need > limit {
        return Err(Failure::Input(format!(
            "error: {label}: the run would need about {} ({need} bytes: queues, CPUs, vCPUs and IRTEs at their measured sizes), more than {whose} of {} ({limit} bytes); make the scenario smaller or raise --max-memory",
            estimate::human_bytes(need),
            estimate::human_bytes(limit)
        )));
    }
    Ok(())
}

fn unknown_builtin(name: &str) -> Failure {
    let names: Vec<&str> = catalog::CATALOG.iter().map(|(n, _)| *n).collect();
    Failure::Input(format!("error: no built-in scenario `{name}`; the catalog has: {}", names.join(", ")))
}

/// For tests only: pauses at `point` when `IRQSIM_TEST_PAUSE_AT` names it (see the module
/// documentation).
fn test_pause(point: &str) {
    if std::env::var_os("IRQSIM_TEST_PAUSE_AT").is_some_and(|p| p == point) {
        say(&format!("irqsim: test pause at {point}"));
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

fn run(
    file: Option<PathBuf>,
    builtin: Option<String>,
    seed: Option<u64>,
    out: Option<PathBuf>,
    max_memory: Option<u64>,
) -> Result<(), Failure> {
    let source = match file {
        Some(path) => {
            let label = path.display().to_string();
            runner::Source { bytes: read_file(&path)?, run_args: shell::run_args(&path), label }
        }
        None => {
            let name = builtin.unwrap_or_else(|| catalog::default_name().to_owned());
            let text = catalog::get(&name).ok_or_else(|| unknown_builtin(&name))?;
            runner::Source {
                label: format!("builtin:{name}"),
                bytes: text.as_bytes().to_vec(),
                run_args: format!("--builtin {}", shell::quote(OsStr::new(&name))),
            }
        }
    };
    let scenario = load(&source.label, &source.bytes)?;
    check_size(&scenario, &source.label, max_memory)?;
    let seed = seed.unwrap_or(scenario.seed);
    let out = out.unwrap_or_else(|| Path::new("irqsim-out").join(&scenario.name));
    // Before the run: a folder that cannot take the report is found now, not after it.
    let folder = reports::ReportDir::prepare(&out).map_err(|e| Failure::Input(format!("error: {e}")))?;
    say(&format!("irqsim: running {} (seed {seed}) from {}", scenario.name, source.label));
    let result = runner::run(&scenario, &source, seed)
        .map_err(|e| Failure::Internal(format!("{e}; reproduce with: irqsim run {} --seed {seed}", source.run_args)))?;
    let json = serde_json::to_string_pretty(&result.report).map_err(|e| Failure::Internal(e.to_string()))? + "\n";
    let perf = serde_json::to_string_pretty(&result.perf).map_err(|e| Failure::Internal(e.to_string()))? + "\n";
    let write =
        |name: &str, text: &str| folder.write(name, text.as_bytes()).map_err(|e| Failure::Input(format!("error: {e}")));
    write("summary.md", &reports::markdown(&result.report))?;
    test_pause("write");
    write("summary.txt", &reports::text(&result.report))?;
    write("points.csv", &reports::csv(&result.report))?;
    write("perf.json", &perf)?;
    // report.json last: its presence means the run finished and every file is whole.
    write("report.json", &json)?;
    test_pause("switch");
    folder.commit().map_err(|e| Failure::Input(format!("error: {e}")))?;
    let p = &result.perf;
    let rss = p.peak_rss_bytes.map_or("unknown".to_owned(), |b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)));
    let rss = match p.bytes_per_queue {
        Some(per_queue) => format!("{rss} ({per_queue:.0} bytes per queue)"),
        None => rss,
    };
    print(&format!(
        "{}\nperformance: {} events in {:.3} s wall = {:.2} M events/s; {:.4} simulated s per wall s; {:.2} events per interrupt; peak memory {rss}\nreport: {}\n",
        reports::text(&result.report),
        p.event_count,
        p.wall_s,
        p.events_per_s / 1e6,
        p.sim_per_wall,
        p.events_per_interrupt,
        out.join("report.json").display()
    ))
}
