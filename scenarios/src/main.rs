//! The `irqsim` command: run, validate, describe scenarios and render reports.
//!
//! Exit codes: 0 success; 2 bad input (scenario errors, unreadable files, bad arguments);
//! 1 internal error (a bug in irqsim, reported with the seed that reproduces it); 3 the
//! run finished and its report is written, but an expectation of the scenario failed.
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
//! `IRQSIM_TEST_STOP_AFTER=N` makes a sweep stop dead (exit 137, as if killed) once N runs
//! are kept in its checkpoint, so that a test can resume it.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use scenarios::{catalog, estimate, runner, shell, sweep};

mod progress;

/// What `irqsim --help` opens with.
const ABOUT: &str = "irqsim simulates interrupt delivery at scale: devices with thousands of queues (MSI, MSI-X, \
IMS), the x86 vector space and VT-d remapping or posted interrupts, ARM GICv3/v4 ITS, KVM guests, \
and the CPUs that handle them. A scenario file describes the platform, devices, guests, workload \
and sweep; irqsim runs it and writes a report (per-stage latency percentiles, resource use against \
every limit, modelled failures and why, tables, CSV, plain text for mail) with the seed and \
scenario hash that reproduce it.

With no arguments it runs the built-in flagship scenario (four NVMe controllers on a 32-CPU host) \
and writes irqsim-out/nvme-bare-metal/.";

/// irqsim: a discrete-event simulator of interrupt delivery at scale.
#[derive(Debug, Parser)]
#[command(
    name = "irqsim",
    version = scenarios::VERSION,
    about = "A discrete-event simulator of interrupt delivery at scale",
    long_about = ABOUT
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Print nothing but errors and warnings (no summary, no progress, no performance line).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// What `run` and `merge` print on standard output: the plain-text summary, or the
    /// report itself (report.json) for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The form of the summary on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// The plain-text summary (what summary.txt holds).
    Text,
    /// The report (what report.json holds).
    Json,
}

/// How much to say, and in what form.
#[derive(Debug, Clone, Copy)]
struct Ui {
    quiet: bool,
    format: Format,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario (every run of its sweep, if it has one) and write report.json,
    /// summary.md, summary.txt, points.csv, plots, index.html and perf.json.
    #[command(visible_alias = "sweep")]
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
        /// Worker threads for a sweep's runs (default: every CPU). The report is the same
        /// bytes whatever the count.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: Option<u16>,
        /// Run only shard I of N of a sweep's runs (every N-th run from the I-th; 0-based),
        /// for a batch system's array job; `irqsim merge` joins the shards. `auto/N` takes I
        /// from SLURM_ARRAY_TASK_ID (less SLURM_ARRAY_TASK_MIN, over SLURM_ARRAY_TASK_STEP) or
        /// from Kubernetes' JOB_COMPLETION_INDEX.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Continue an interrupted sweep into the same output folder: runs it finished are
        /// kept, the others are run.
        #[arg(long)]
        resume: bool,
    },
    /// Merge the reports of a sweep's shards (`irqsim run --shard I/N`) into one report, the
    /// same bytes as the sweep run in one process.
    Merge {
        /// The shards' report folders (or their report.json files), all N of them.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Output directory (default: irqsim-out/NAME).
        #[arg(long)]
        out: Option<PathBuf>,
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell), e.g.
    /// `irqsim completions bash > /etc/bash_completion.d/irqsim`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `irqsim man > irqsim.1 && man ./irqsim.1`.
    Man,
    /// Re-render summary.md, summary.txt, points.csv, the plots and index.html from a
    /// report.json (or its directory).
    Report {
        /// report.json or the directory holding it.
        path: PathBuf,
        /// Print the plain text for a mailing list instead (at most 72 columns: the key table,
        /// a histogram, the verdicts, and the version, hash, seed and command that reproduce
        /// it); writes nothing.
        #[arg(long)]
        email: bool,
    },
    /// Print a 72-column table of what changed from report A to report B (each a report
    /// folder or its report.json), and whether each change is significant, for a reply.
    Compare {
        /// The report compared against (the "before").
        a: PathBuf,
        /// The report compared (the "after").
        b: PathBuf,
    },
}

/// How a command failed.
enum Failure {
    /// The user's input is wrong (exit 2).
    Input(String),
    /// The run worked and its report is written, but some of the scenario's expectations
    /// failed (exit 3), as a test runner says FAIL.
    Expectations(String),
    /// irqsim is wrong (exit 1).
    Internal(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui { quiet: cli.quiet, format: cli.format };
    let command = cli.command.unwrap_or(Command::Run {
        file: None,
        builtin: None,
        seed: None,
        out: None,
        max_memory: None,
        threads: None,
        shard: None,
        resume: false,
    });
    // A panic is a bug in irqsim: report it as an internal error (exit 1), not a crash.
    std::panic::set_hook(Box::new(|info| say(&format!("irqsim: internal error (a bug in irqsim): {info}"))));
    let result = std::panic::catch_unwind(|| execute(command, ui)).unwrap_or_else(|_| {
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
        Err(Failure::Expectations(message)) => {
            say(&message);
            ExitCode::from(3)
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

/// Reads and validates a scenario and every run of its sweep; `seed` is the run seed
/// (default: the scenario's).
fn load(label: &str, bytes: &[u8], seed: Option<u64>) -> Result<sweep::Plan, Failure> {
    let text = std::str::from_utf8(bytes).map_err(|e| Failure::Input(not_utf8(label, bytes, &e)))?;
    let plan = sweep::plan(label, text, seed).map_err(Failure::Input)?;
    for w in &plan.warnings {
        say(&format!("warning: {w}"));
    }
    Ok(plan)
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

fn execute(command: Command, ui: Ui) -> Result<(), Failure> {
    match command {
        Command::Run { file, builtin, seed, out, max_memory, threads, shard, resume } => {
            run(RunArgs { file, builtin, seed, out, max_memory, threads, shard, resume }, ui)
        }
        Command::Merge { shards, out } => merge(&shards, out, ui),
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "irqsim", &mut text);
            print(&String::from_utf8_lossy(&text))
        }
        Command::Man => {
            let mut text = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut text)
                .map_err(|e| Failure::Internal(e.to_string()))?;
            print(&String::from_utf8_lossy(&text))
        }
        Command::Validate { files } => {
            let mut failed = 0;
            for file in &files {
                let label = file.display().to_string();
                match read_file(file).and_then(|bytes| load(&label, &bytes, None)) {
                    Ok(plan) => {
                        let s = plan.first();
                        let runs =
                            if plan.runs.len() > 1 { format!(", {} runs", plan.runs.len()) } else { String::new() };
                        print(&format!(
                            "{label}: ok ({} devices, {} CPUs{runs})\n",
                            s.platform.devices.len(),
                            s.platform.cpu_count
                        ))?;
                    }
                    Err(Failure::Input(m) | Failure::Internal(m) | Failure::Expectations(m)) => {
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
        Command::Compare { a, b } => {
            let read = |path: &Path| {
                let file = if path.is_dir() { path.join("report.json") } else { path.to_path_buf() };
                reports::read_report(&file).map_err(|e| Failure::Input(format!("error: {e}")))
            };
            let (ra, rb) = (read(&a)?, read(&b)?);
            let (la, lb) = (a.display().to_string(), b.display().to_string());
            let table = reports::compare(&ra, &la, &rb, &lb).map_err(|e| Failure::Input(format!("error: {e}")))?;
            print(&table)
        }
        Command::Report { path, email } => {
            let file = if path.is_dir() { path.join("report.json") } else { path };
            let report = reports::read_report(&file).map_err(|e| Failure::Input(format!("error: {e}")))?;
            if email {
                return print(&reports::email(&report, &format!("irqsim {}", scenarios::VERSION)));
            }
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
            let plots = reports::plots(&report).map_err(|e| Failure::Internal(format!("drawing the plots: {e}")))?;
            for plot in &plots {
                let png = dir.join(format!("{}.png", plot.name));
                reports::write_atomic(&png, &plot.png).map_err(|e| {
                    Failure::Input(format!("error: cannot write {}: {}", png.display(), reports::io_reason(&e)))
                })?;
                write(&format!("{}.svg", plot.name), plot.svg.clone())?;
            }
            write("index.html", reports::html(&report, &plots))?;
            print(&format!(
                "wrote summary.md, summary.txt, points.csv, index.html and {} plots in {}\n",
                plots.len(),
                dir.display()
            ))
        }
    }
}

/// Refuses a plan whose estimated memory exceeds `max_memory` (default half the
/// machine's) with `threads` runs at once, and says up front when its event count is
/// enormous.
fn check_size(plan: &sweep::Plan, label: &str, max_memory: Option<u64>, threads: usize) -> Result<(), Failure> {
    let (limit, whose) = match max_memory {
        Some(limit) => (limit, "--max-memory"),
        None => (estimate::default_max_memory_bytes(), "--max-memory's default, half the machine's memory,"),
    };
    let events: f64 = plan.runs.iter().map(|r| plan.cells[r.cell].event_count).sum();
    if events > estimate::EVENT_COUNT_WARN {
        eprintln!(
            "irqsim: {label}: about {events:.2e} events to simulate (4 per interrupt: the queues' rates x {} over {} runs); this will take long (a few million events per second per thread); set event_limit or a shorter duration to stop earlier",
            plan.first().duration,
            plan.runs.len()
        );
    }
    let one = plan.cells.iter().map(|c| c.memory_bytes).max().unwrap_or(0);
    let at_once = threads.min(plan.runs.len()).max(1) as u64;
    let need = one.saturating_mul(at_once);
    if need > limit {
        let runs = if at_once > 1 { format!(", {at_once} runs at once") } else { String::new() };
        return Err(Failure::Input(format!(
            "error: {label}: the run would need about {} ({need} bytes: queues, CPUs, vCPUs and IRTEs at their measured sizes{runs}), more than {whose} of {} ({limit} bytes); make the scenario smaller{}, or raise --max-memory",
            estimate::human_bytes(need),
            estimate::human_bytes(limit),
            if at_once > 1 { ", use fewer --threads" } else { "" }
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

/// The arguments of `irqsim run`.
struct RunArgs {
    file: Option<PathBuf>,
    builtin: Option<String>,
    seed: Option<u64>,
    out: Option<PathBuf>,
    max_memory: Option<u64>,
    threads: Option<u16>,
    shard: Option<String>,
    resume: bool,
}

/// `I/N` or `auto/N` (I from the batch system's environment) as a shard.
fn parse_shard(text: &str) -> Result<reports::ShardInfo, Failure> {
    let bad = |why: String| Failure::Input(format!("error: --shard {text}: {why}"));
    let (i, n) = text.split_once('/').ok_or_else(|| bad("expected I/N, e.g. 0/8, or auto/N".into()))?;
    let count: u32 = n.trim().parse().map_err(|_| bad(format!("`{n}` is not a whole number of shards")))?;
    if count == 0 {
        return Err(bad("there must be at least one shard".into()));
    }
    let index: u32 = if i.trim() == "auto" {
        shard_from_env().map_err(&bad)?
    } else {
        i.trim().parse().map_err(|_| bad(format!("`{i}` is not a whole number (or `auto`)")))?
    };
    if index >= count {
        return Err(bad(format!("shard {index} does not exist: shards are numbered 0 to {}", count - 1)));
    }
    Ok(reports::ShardInfo { index, count })
}

/// The shard index a batch system gives this task: Slurm's array task id counted from the
/// array's first id in steps of its step, or Kubernetes' completion index.
fn shard_from_env() -> Result<u32, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let number = |name: &str, text: String| {
        text.trim().parse::<u32>().map_err(|_| format!("{name}={text} is not a whole number"))
    };
    if let Some(id) = var("SLURM_ARRAY_TASK_ID") {
        let id = number("SLURM_ARRAY_TASK_ID", id)?;
        let min = var("SLURM_ARRAY_TASK_MIN").map_or(Ok(0), |v| number("SLURM_ARRAY_TASK_MIN", v))?;
        let step = var("SLURM_ARRAY_TASK_STEP").map_or(Ok(1), |v| number("SLURM_ARRAY_TASK_STEP", v))?.max(1);
        let offset = id
            .checked_sub(min)
            .ok_or_else(|| format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"))?;
        if offset % step != 0 {
            return Err(format!(
                "SLURM_ARRAY_TASK_ID {id} is not SLURM_ARRAY_TASK_MIN {min} plus a multiple of SLURM_ARRAY_TASK_STEP {step}"
            ));
        }
        return Ok(offset / step);
    }
    if let Some(index) = var("JOB_COMPLETION_INDEX") {
        return number("JOB_COMPLETION_INDEX", index);
    }
    Err("`auto` takes the index from SLURM_ARRAY_TASK_ID (a Slurm job array) or JOB_COMPLETION_INDEX (a Kubernetes Indexed Job), and neither is set".into())
}

/// Writes a report's files into `folder` (report.json last: its presence means every file
/// is whole) and switches the folder into place.
fn write_report(
    folder: reports::ReportDir,
    report: &reports::RunReport,
    perf: Option<&reports::PerfInfo>,
) -> Result<(), Failure> {
    let json = serde_json::to_string_pretty(report).map_err(|e| Failure::Internal(e.to_string()))? + "\n";
    let write =
        |name: &str, text: &str| folder.write(name, text.as_bytes()).map_err(|e| Failure::Input(format!("error: {e}")));
    write("summary.md", &reports::markdown(report))?;
    test_pause("write");
    write("summary.txt", &reports::text(report))?;
    write("points.csv", &reports::csv(report))?;
    let plots = reports::plots(report).map_err(|e| Failure::Internal(format!("drawing the plots: {e}")))?;
    for plot in &plots {
        folder.write(&format!("{}.png", plot.name), &plot.png).map_err(|e| Failure::Input(format!("error: {e}")))?;
        write(&format!("{}.svg", plot.name), &plot.svg)?;
    }
    write("index.html", &reports::html(report, &plots))?;
    if let Some(perf) = perf {
        let perf = serde_json::to_string_pretty(perf).map_err(|e| Failure::Internal(e.to_string()))? + "\n";
        write("perf.json", &perf)?;
    }
    write("report.json", &json)?;
    test_pause("switch");
    folder.commit().map_err(|e| Failure::Input(format!("error: {e}")))
}

/// For tests only: ends the process as if killed once `IRQSIM_TEST_STOP_AFTER` runs are
/// kept (see the module documentation).
fn test_stop(recorded: &std::sync::atomic::AtomicU64) {
    let done = recorded.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let stop = std::env::var("IRQSIM_TEST_STOP_AFTER").ok().and_then(|v| v.parse::<u64>().ok());
    if stop == Some(done) {
        say(&format!("irqsim: test stop after {done} runs"));
        std::process::exit(137);
    }
}

fn run(args: RunArgs, ui: Ui) -> Result<(), Failure> {
    let source = match args.file {
        Some(path) => {
            let label = path.display().to_string();
            runner::Source { bytes: read_file(&path)?, run_args: shell::run_args(&path), label }
        }
        None => {
            let name = args.builtin.unwrap_or_else(|| catalog::default_name().to_owned());
            let text = catalog::get(&name).ok_or_else(|| unknown_builtin(&name))?;
            runner::Source {
                label: format!("builtin:{name}"),
                bytes: text.as_bytes().to_vec(),
                run_args: format!("--builtin {}", shell::quote(OsStr::new(&name))),
            }
        }
    };
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let plan = load(&source.label, &source.bytes, args.seed)?;
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    check_size(&plan, &source.label, args.max_memory, threads)?;
    let seed = plan.seed;
    let name = &plan.first().name;
    let out = args.out.unwrap_or_else(|| {
        let dir = Path::new("irqsim-out");
        match shard {
            Some(s) => dir.join(format!("{name}.shard-{}-of-{}", s.index, s.count)),
            None => dir.join(name),
        }
    });
    // Before the run: a folder that cannot take the report is found now, not after it.
    let folder = reports::ReportDir::prepare(&out).map_err(|e| Failure::Input(format!("error: {e}")))?;
    let run_count = plan.runs.len() as u32;
    // A sweep keeps each finished run on disk until the report is in place.
    let checkpoint = if run_count > 1 || args.resume {
        let key = reports::CheckpointKey {
            scenario_sha256: runner::sha256_hex(&source.bytes),
            seed,
            irqsim_version: scenarios::VERSION.to_owned(),
            format_version: reports::FORMAT_VERSION,
            run_count,
            shard,
        };
        Some(
            reports::Checkpoint::open(folder.target(), &key, args.resume)
                .map_err(|e| Failure::Input(format!("error: {e}")))?,
        )
    } else {
        None
    };
    let (checkpoint, finished) = match checkpoint {
        Some((c, f)) => (Some(c), f),
        None => (None, Vec::new()),
    };
    let todo = runner::shard_ordinals(run_count, shard).len();
    let what = match (run_count, shard) {
        (1, None) => String::new(),
        (n, None) => format!(", {n} runs on {threads} threads"),
        (n, Some(s)) => format!(", shard {} of {} ({todo} of {n} runs) on {threads} threads", s.index, s.count),
    };
    if !ui.quiet {
        say(&format!("irqsim: running {} (seed {seed}) from {}{what}", name, source.label));
    }
    if !finished.is_empty() && !ui.quiet {
        say(&format!("irqsim: resuming: {} runs already finished", finished.len()));
    }
    let progress = progress::Progress::new(todo as u64, finished.len() as u64, ui.quiet);
    let record_failed = std::sync::Mutex::new(None);
    let recorded = std::sync::atomic::AtomicU64::new(0);
    let on_done = |ordinal: u32, point: &reports::PointReport| {
        if let Some(c) = &checkpoint
            && let Err(e) = c.record(ordinal, point)
        {
            record_failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(e);
        }
        progress.tick();
        test_stop(&recorded);
    };
    let run_progress = |fraction: f64| progress.run_fraction(fraction);
    let options = runner::Options { threads, shard, finished, on_done: &on_done, run_progress: &run_progress };
    let result = runner::run(&plan, &source, seed, options)
        .map_err(|e| Failure::Internal(format!("{e}; reproduce with: irqsim run {} --seed {seed}", source.run_args)))?;
    progress.finish();
    if let Some(e) = record_failed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        say(&format!("irqsim: warning: a finished run could not be kept for --resume: {e}"));
    }
    write_report(folder, &result.report, Some(&result.perf))?;
    if let Some(c) = checkpoint {
        c.remove().map_err(|e| Failure::Input(format!("error: {e}")))?;
    }
    summary(&result.report, ui, &out)?;
    if !ui.quiet {
        let p = &result.perf;
        let rss = p.peak_rss_bytes.map_or("unknown".to_owned(), |b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)));
        let rss = match p.bytes_per_queue {
            Some(per_queue) => format!("{rss} ({per_queue:.0} bytes per queue)"),
            None => rss,
        };
        say(&format!(
            "irqsim: performance: {} events in {:.3} s wall on {} thread{} = {:.2} M events/s; {:.4} simulated s per wall s; {:.2} events per interrupt; peak memory {rss}",
            p.event_count,
            p.wall_s,
            p.threads,
            if p.threads == 1 { "" } else { "s" },
            p.events_per_s / 1e6,
            p.sim_per_wall,
            p.events_per_interrupt,
        ));
    }
    expectations(&result.report)
}

/// Exit 3 when an expectation failed (the report is written either way).
fn expectations(report: &reports::RunReport) -> Result<(), Failure> {
    let failed = report.verdicts.iter().filter(|v| !v.held).count();
    if failed == 0 {
        return Ok(());
    }
    Err(Failure::Expectations(format!(
        "irqsim: {failed} of {} expectation verdicts failed (see the report); exit status 3",
        report.verdicts.len()
    )))
}

/// The summary on standard output (text or the report as JSON), and where the report is
/// on standard error.
fn summary(report: &reports::RunReport, ui: Ui, out: &Path) -> Result<(), Failure> {
    if ui.quiet {
        return Ok(());
    }
    match ui.format {
        Format::Text => print(&reports::text(report))?,
        Format::Json => {
            print(&(serde_json::to_string_pretty(report).map_err(|e| Failure::Internal(e.to_string()))? + "\n"))?
        }
    }
    say(&format!("irqsim: report: {}", out.join("report.json").display()));
    Ok(())
}

fn merge(shards: &[PathBuf], out: Option<PathBuf>, ui: Ui) -> Result<(), Failure> {
    let mut read = Vec::new();
    for path in shards {
        let file = if path.is_dir() { path.join("report.json") } else { path.clone() };
        let report = reports::read_report(&file).map_err(|e| Failure::Input(format!("error: {e}")))?;
        read.push((file.display().to_string(), report));
    }
    let report = reports::merge(read).map_err(|e| Failure::Input(format!("error: {e}")))?;
    let out = out.unwrap_or_else(|| Path::new("irqsim-out").join(&report.scenario.name));
    let folder = reports::ReportDir::prepare(&out).map_err(|e| Failure::Input(format!("error: {e}")))?;
    write_report(folder, &report, None)?;
    summary(&report, ui, &out)?;
    expectations(&report)
}
