//! The command line: `serve`, `init`, `user …`, `seat …`, `kb …`, `bidders …`, `bank …`,
//! `calendar …`, `recordings …`, `audit …`, `config …`, `migrate`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use hotline_core::{Clock, Role, SystemClock, SystemRng};

use hotline_integrations::bank::{MismatchFilter, Resolution};
use hotline_integrations::table::{FileFormat, TextEncoding};
use hotline_integrations::text::format_cents;

use crate::commands_integrations::{self as integ, ImportKind, ImportOptions};
use crate::config::{Config, DEFAULT_TOML, LogFormat};
use crate::db::Db;
use crate::db::audit::Audit;
use crate::db::data_files::{Direction, NewDataFile};
use crate::db::redact_url;
use crate::db::users::{NewUser, validate_username};
use crate::fail::Failure;
use crate::password;
use crate::server::{open_db, serve};

#[derive(Debug, Parser)]
#[command(
    name = "hotline",
    version,
    about = "天津市小客车增量指标竞价服务热线 — contact centre and telephony platform"
)]
pub struct Cli {
    /// Configuration file (TOML). Without it, built-in defaults apply.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format (overrides `log.format`).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (HTTP API and web console, SIP gateway).
    Serve {
        /// HTTP address (overrides `http.listen`).
        #[arg(long, value_name = "ADDR:PORT")]
        http: Option<SocketAddr>,
        /// SIP address, UDP and TCP (overrides `sip.listen`).
        #[arg(long, value_name = "ADDR:PORT")]
        sip: Option<SocketAddr>,
    },
    /// Create the data directory and database, and the first administrator.
    Init,
    /// Manage users of the web console.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage agent seats (SIP accounts of the softphones).
    #[command(subcommand)]
    Seat(SeatCommand),
    /// Knowledge base: rebuild the index, import or export articles.
    #[command(subcommand)]
    Kb(KbCommand),
    /// Auction bidder records: import the auction system's export.
    #[command(subcommand)]
    Bidders(BiddersCommand),
    /// Bohai Bank files: deposit flows, refund failures, and the mismatches to reconcile.
    #[command(subcommand)]
    Bank(BankCommand),
    /// The monthly auction calendar.
    #[command(subcommand)]
    Calendar(CalendarCommand),
    /// Call recordings: check the archive and the backup.
    #[command(subcommand)]
    Recordings(RecordingsCommand),
    /// The IVR flow and prompts: check them, or make the running server reload them.
    #[command(subcommand)]
    Ivr(IvrCommand),
    /// Print or check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The tamper-evident audit log and the register of data files.
    #[command(subcommand)]
    Audit(crate::commands_audit::AuditCommand),
    /// Bring the database schema up to date.
    Migrate,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; prints a generated password unless --password-stdin is given.
    Add {
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set a new password (generated unless --password-stdin) and end the user's sessions.
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user and end their sessions.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
}

#[derive(Debug, Subcommand)]
pub enum SeatCommand {
    /// Add a seat; prints a generated password unless one is given.
    Add {
        /// The seat number, also the SIP user name (2–16 digits, e.g. 8001).
        number: String,
        /// The SIP password (8–128 characters). Prefer --password-stdin: arguments are
        /// visible to other users of the machine.
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List seats and their registered contacts.
    List,
    /// Set a new SIP password (generated unless given).
    Passwd {
        number: String,
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a seat and its registrations.
    Remove { number: String },
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Rebuild the search index from the database.
    Reindex,
    /// Import articles from a folder of Markdown files with front matter, or a JSON file
    /// (all-or-nothing, idempotent by slug).
    Import { path: PathBuf },
    /// Export every article to a folder of Markdown files (or a .json file).
    Export { path: PathBuf },
}

/// What every file import takes. All-or-nothing: one bad row and nothing is written; every
/// bad row is reported and the exit code is 2.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file: CSV (UTF-8 or GBK) or XLSX (docs/formats.md).
    pub file: PathBuf,
    /// The auction period the file belongs to.
    #[arg(long, value_name = "YYYY-MM")]
    pub period: String,
    /// Check the whole file and report what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Text encoding of a CSV file: auto (UTF-8 when valid, else GBK), utf-8 or gbk.
    #[arg(long, default_value = "auto", value_parser = parse_encoding)]
    pub encoding: TextEncoding,
    /// auto (XLSX by content or .xlsx extension, else CSV), csv or xlsx.
    #[arg(long, default_value = "auto", value_parser = parse_file_format)]
    pub format: FileFormat,
    /// No progress bar (there is none anyway when standard error is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum BiddersCommand {
    /// Import the bidder export of one period (upsert by period and application code;
    /// importing the same file again changes nothing).
    Import(ImportArgs),
}

#[derive(Debug, Subcommand)]
pub enum BankCommand {
    /// Import a deposit-flow file (到账流水): matched payments mark deposits received, the
    /// rest go to the mismatch list.
    ImportDeposits(ImportArgs),
    /// Import a refund-failure file: the bidders' refund status becomes failed, with reason.
    ImportRefundFailures(ImportArgs),
    /// List the deposit mismatches of a period (open ones unless --resolved or --all).
    Mismatches {
        #[arg(long, value_name = "YYYY-MM")]
        period: String,
        #[arg(long, conflicts_with = "all")]
        resolved: bool,
        #[arg(long)]
        all: bool,
    },
    /// Resolve a mismatch by hand (手工勾兑): credit it to a bidder, or return the money.
    Resolve {
        /// The mismatch's id (from `hotline bank mismatches`).
        id: String,
        /// Credit the payment to the bidder (the code in the memo, or --code).
        #[arg(
            long,
            required_unless_present = "give_back",
            conflicts_with = "give_back"
        )]
        accept: bool,
        /// With --accept: the application code to credit, when the memo's is wrong.
        #[arg(long, requires = "accept", value_name = "CODE")]
        code: Option<String>,
        /// Return the money to the payer (退回).
        #[arg(long = "return")]
        give_back: bool,
        /// Why (kept in the audit log).
        #[arg(long)]
        note: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Enter or replace a month's calendar from a JSON file (docs/formats.md §4).
    Set {
        #[arg(value_name = "FILE.json")]
        file: PathBuf,
    },
    /// Show a period's calendar (this month's without PERIOD).
    Show {
        #[arg(value_name = "YYYY-MM")]
        period: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RecordingsCommand {
    /// Re-hash every stored recording in the archive and the backup; print every missing or
    /// mismatched file (exit code 1 when there is any).
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum IvrCommand {
    /// Load the configured flow and prompts as `serve` would and report every problem
    /// (exit code 2 when there is one).
    Check,
    /// Check, then tell the running `hotline serve` of this data directory to reload them
    /// (SIGHUP to the process in `<data dir>/hotline.pid`). New calls use the new flow;
    /// calls in progress keep theirs.
    Reload,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the fully commented default configuration.
    Default,
    /// Check a configuration file (and HOTLINE_* environment overrides).
    Check { file: PathBuf },
}

fn parse_encoding(s: &str) -> Result<TextEncoding, String> {
    s.parse()
}

fn parse_file_format(s: &str) -> Result<FileFormat, String> {
    s.parse()
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: hotline_core::role::UnknownRole| e.to_string())
}

impl Cli {
    /// The configuration in effect: file, then environment, then flags.
    pub fn load_config(&self) -> Result<Config, Failure> {
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(f) = self.log_format {
            config.log.format = f;
        }
        if let Command::Serve { http, sip } = &self.command {
            if let Some(h) = http {
                config.http.listen = *h;
            }
            if let Some(s) = sip {
                config.sip.listen = *s;
            }
        }
        Ok(config)
    }
}

/// Runs a command that needs no configuration; `None` when the command does need it.
pub fn run_without_config(cli: &Cli) -> Option<Result<(), Failure>> {
    match &cli.command {
        Command::Config(ConfigCommand::Default) => {
            print!("{DEFAULT_TOML}");
            Some(Ok(()))
        }
        Command::Config(ConfigCommand::Check { file }) => Some(
            Config::load(Some(file), std::env::vars())
                .map(|_| println!("{}: OK", file.display()))
                .map_err(Failure::from),
        ),
        _ => None,
    }
}

pub async fn run(cli: Cli, config: Config) -> Result<(), Failure> {
    match cli.command {
        Command::Serve { .. } => serve(config).await,
        Command::Init => init(&config).await,
        Command::Migrate => {
            open_db(&config).await?.close().await;
            println!(
                "database {} is up to date",
                redact_url(&config.database_url())
            );
            Ok(())
        }
        Command::User(cmd) => user(&config, cmd).await,
        Command::Seat(cmd) => seat(&config, cmd).await,
        Command::Kb(cmd) => kb(&config, cmd).await,
        Command::Bidders(BiddersCommand::Import(args)) => {
            import(&config, ImportKind::Bidders, args).await
        }
        Command::Bank(BankCommand::ImportDeposits(args)) => {
            import(&config, ImportKind::Deposits, args).await
        }
        Command::Bank(BankCommand::ImportRefundFailures(args)) => {
            import(&config, ImportKind::RefundFailures, args).await
        }
        Command::Bank(cmd) => bank(&config, cmd).await,
        Command::Calendar(cmd) => calendar(&config, cmd).await,
        Command::Recordings(RecordingsCommand::Verify) => verify_recordings(&config).await,
        Command::Ivr(cmd) => ivr(&config, cmd),
        Command::Audit(cmd) => crate::commands_audit::run(&config, cmd).await,
        Command::Config(_) => unreachable!("handled by run_without_config"),
    }
}

async fn cli_audit(db: &Db, action: &str, target: &str, detail: &str) -> Result<(), Failure> {
    db.audit(
        SystemClock.now_ms(),
        &SystemRng,
        Audit {
            actor: "cli",
            action,
            target,
            detail,
            remote_addr: "local",
        },
    )
    .await?;
    Ok(())
}

/// Registers a data file read or written by the CLI (digest register, issue 12).
async fn cli_file(
    db: &Db,
    direction: Direction,
    kind: &str,
    path: &std::path::Path,
    bytes: &[u8],
) -> Result<(), Failure> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    db.record_data_file(
        SystemClock.now_ms(),
        &SystemRng,
        NewDataFile {
            direction,
            kind,
            file_name: &name,
            bytes,
            operator: "cli",
            remote_addr: "local",
        },
    )
    .await?;
    Ok(())
}

async fn hash_blocking(pw: String) -> Result<String, Failure> {
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(Failure::runtime)?
        .map_err(Failure::runtime)
}

async fn init(config: &Config) -> Result<(), Failure> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        Failure::usage(format!(
            "cannot create the data directory {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let db = open_db(config).await?;
    println!("data directory: {}", config.data_dir.display());
    println!("database:       {}", redact_url(&config.database_url()));
    if db.count_users_with_role(Role::Admin).await? > 0 {
        println!(
            "already initialised: an administrator exists (use `hotline user passwd` to reset a password)"
        );
        db.close().await;
        return Ok(());
    }
    let pw = password::generate(&SystemRng);
    let hash = hash_blocking(pw.clone()).await?;
    db.create_user(
        SystemClock.now_ms(),
        &SystemRng,
        NewUser {
            username: "admin",
            display_name: "系统管理员",
            role: Role::Admin,
            password_hash: &hash,
        },
    )
    .await?;
    cli_audit(&db, "user.create", "user:admin", "admin").await?;
    println!("administrator:  admin");
    println!("password:       {pw}");
    // The eight agent seats of the contract (8001–8008), unless seats exist already.
    if hotline_sip_gateway::list_seats(&db.pool)
        .await
        .map_err(Failure::runtime)?
        .is_empty()
    {
        println!("agent seats (SIP user name and password):");
        for n in 8001..=8008 {
            let number = n.to_string();
            let seat_pw = password::generate(&SystemRng);
            hotline_sip_gateway::add_seat(
                &db.pool,
                &number,
                &seat_pw,
                &config.sip.realm,
                SystemClock.now_ms(),
            )
            .await
            .map_err(Failure::runtime)?;
            cli_audit(&db, "seat.create", &format!("seat:{number}"), "").await?;
            println!("  seat {number}: {seat_pw}");
        }
    }
    let kb =
        crate::server::open_kb(config, &db, Arc::new(SystemClock), Arc::new(SystemRng)).await?;
    let report = kb.load_builtin("system").await.map_err(Failure::runtime)?;
    println!(
        "knowledge base: {} articles added, {} updated, {} unchanged",
        report.created.len(),
        report.updated.len(),
        report.unchanged.len()
    );
    db.close().await;
    println!("(passwords are shown only once; change the administrator's after the first login)");
    Ok(())
}

async fn kb(config: &Config, cmd: KbCommand) -> Result<(), Failure> {
    let db = open_db(config).await?;
    let kb =
        crate::server::open_kb(config, &db, Arc::new(SystemClock), Arc::new(SystemRng)).await?;
    let usage = |e: hotline_knowledge::KnowledgeError| match e.class() {
        hotline_knowledge::ErrorClass::Internal => Failure::runtime(e),
        _ => Failure::usage(e.to_string()),
    };
    let result = match cmd {
        KbCommand::Reindex => kb.reindex().await.map_err(usage).map(|r| {
            println!("index rebuilt: {} articles in {} ms", r.articles, r.millis);
        }),
        KbCommand::Import { path } => {
            let report = if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
                let r = kb.import_json(&text, "cli").await;
                if r.is_ok() {
                    cli_file(&db, Direction::Import, "kb_import", &path, text.as_bytes()).await?;
                }
                r
            } else {
                kb.import_dir(&path, "cli").await
            }
            .map_err(usage)?;
            cli_audit(&db, "kb.import", &path.display().to_string(), "").await?;
            println!(
                "imported: {} added, {} updated, {} unchanged",
                report.created.len(),
                report.updated.len(),
                report.unchanged.len()
            );
            Ok(())
        }
        KbCommand::Export { path } => {
            let n = if path.extension().is_some_and(|e| e == "json") {
                let text = kb.export_json().await.map_err(usage)?;
                std::fs::write(&path, &text)
                    .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
                cli_file(&db, Direction::Export, "kb_export", &path, text.as_bytes()).await?;
                text_count(&path)
            } else {
                kb.export_dir(&path).await.map_err(usage)?
            };
            cli_audit(&db, "kb.export", &path.display().to_string(), "").await?;
            println!("exported {n} articles to {}", path.display());
            Ok(())
        }
    };
    db.close().await;
    result
}

async fn import(config: &Config, kind: ImportKind, args: ImportArgs) -> Result<(), Failure> {
    use std::io::IsTerminal;
    let db = open_db(config).await?;
    let opts = ImportOptions {
        period: args.period,
        dry_run: args.dry_run,
        encoding: args.encoding,
        format: args.format,
        progress: !args.no_progress && std::io::stderr().is_terminal(),
    };
    let result = integ::import_file(&db, &config.integrations, kind, &args.file, &opts).await;
    db.close().await;
    let report = result?;
    print!("{}", integ::format_report(&report));
    match integ::exit_code(&report) {
        0 => Ok(()),
        code => Err(Failure {
            code,
            message: format!(
                "{}: {} 行有错误，整个文件未写入",
                args.file.display(),
                report.bad_rows()
            ),
        }),
    }
}

async fn bank(config: &Config, cmd: BankCommand) -> Result<(), Failure> {
    let db = open_db(config).await?;
    let result = async {
        match cmd {
            BankCommand::Mismatches {
                period,
                resolved,
                all,
            } => {
                let filter = match (resolved, all) {
                    (_, true) => MismatchFilter::All,
                    (true, false) => MismatchFilter::Resolved,
                    (false, false) => MismatchFilter::Open,
                };
                let list = integ::list_mismatches(&db, &period, filter).await?;
                println!(
                    "{:<32} {:<20} {:<17} {:>12} {:<14} {:<20} {:<10} 付款人",
                    "id", "流水号", "到账时间", "金额", "申请编码", "问题", "处理"
                );
                for d in &list {
                    let d = d.clone().masked();
                    println!(
                        "{:<32} {:<20} {:<17} {:>12} {:<14} {:<20} {:<10} {} {}",
                        d.id,
                        d.bank_serial,
                        beijing_minute(d.arrived_at),
                        format_cents(d.amount_cents),
                        d.application_code,
                        d.mismatch_label,
                        if d.resolution.is_empty() {
                            "待处理"
                        } else {
                            &d.resolution
                        },
                        d.payer_name,
                        d.payer_account
                    );
                }
                println!("{} 条", list.len());
                Ok(())
            }
            BankCommand::Resolve {
                id,
                accept,
                code,
                give_back,
                note,
            } => {
                let resolution = match (accept, give_back) {
                    (true, false) => Resolution::Accept {
                        application_code: code,
                    },
                    (false, true) => Resolution::Return,
                    _ => return Err(Failure::usage("give exactly one of --accept and --return")),
                };
                let d = integ::resolve_mismatch(&db, &id, resolution, &note).await?;
                println!(
                    "{}: {}（流水号 {}，申请编码 {}）",
                    d.id, d.resolution, d.bank_serial, d.application_code
                );
                Ok(())
            }
            BankCommand::ImportDeposits(_) | BankCommand::ImportRefundFailures(_) => {
                unreachable!("imports are dispatched by run")
            }
        }
    }
    .await;
    db.close().await;
    result
}

/// `YYYY-MM-DD HH:MM` in Beijing time.
pub(crate) fn beijing_minute(t: hotline_core::UnixMillis) -> String {
    let date = hotline_integrations::text::Date::of_beijing(t);
    let secs = (t + hotline_integrations::text::BEIJING_OFFSET_MS).rem_euclid(86_400_000) / 1000;
    format!("{} {:02}:{:02}", date.iso(), secs / 3600, secs % 3600 / 60)
}

async fn calendar(config: &Config, cmd: CalendarCommand) -> Result<(), Failure> {
    let db = open_db(config).await?;
    let result = match cmd {
        CalendarCommand::Set { file } => integ::set_calendar(&db, &file).await.map(|c| {
            println!("{} 期竞价日历已保存", c.period);
            println!("{}", c.summary_zh());
        }),
        CalendarCommand::Show { period } => integ::show_calendar(&db, period.as_deref())
            .await
            .map(|c| println!("{}", c.summary_zh())),
    };
    db.close().await;
    result
}

async fn verify_recordings(config: &Config) -> Result<(), Failure> {
    let db = open_db(config).await?;
    let recording = config.recording();
    let result = hotline_recording::store::verify(&db.pool, &recording).await;
    let outcome = match result {
        Err(e) => Err(Failure::runtime(format!(
            "verifying recordings failed: {e}"
        ))),
        Ok(issues) => {
            for i in &issues {
                let root = if i.location == "backup" {
                    &recording.backup_path
                } else {
                    &recording.root
                };
                let got = match i.problem {
                    "mismatch" => format!("sha256 {} (expected {})", i.actual, i.expected),
                    _ => i.actual.clone(),
                };
                println!(
                    "{} {:<8} {} (recording {}): {}",
                    i.location,
                    i.problem,
                    root.join(&i.relative_path).display(),
                    i.recording_id,
                    got
                );
            }
            let detail = format!("problems={}", issues.len());
            cli_audit(&db, "recording.verify", "recordings", &detail).await?;
            if issues.is_empty() {
                println!(
                    "recordings verified: no missing or mismatched files in {}{}",
                    recording.root.display(),
                    if recording.backup_path.as_os_str().is_empty() {
                        String::new()
                    } else {
                        format!(" and {}", recording.backup_path.display())
                    }
                );
                Ok(())
            } else {
                Err(Failure::runtime(format!(
                    "{} missing or mismatched recording files",
                    issues.len()
                )))
            }
        }
    };
    db.close().await;
    outcome
}

/// The number of articles in an exported JSON file.
fn text_count(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v.as_array()
                .map(Vec::len)
                .or_else(|| v["articles"].as_array().map(Vec::len))
        })
        .unwrap_or(0)
}

fn seat_password(given: Option<String>, from_stdin: bool) -> Result<(String, bool), Failure> {
    match (given, from_stdin) {
        (Some(p), _) => Ok((p, false)),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(Failure::runtime)?;
            Ok((line.trim_end_matches(['\r', '\n']).to_string(), false))
        }
        (None, false) => Ok((password::generate(&SystemRng), true)),
    }
}

fn seat_failure(e: hotline_sip_gateway::GatewayError) -> Failure {
    use hotline_sip_gateway::GatewayError as E;
    match e {
        E::InvalidSeatNumber(_) | E::WeakPassword | E::SeatExists(_) | E::SeatNotFound(_) => {
            Failure::usage(e.to_string())
        }
        other => Failure::runtime(other),
    }
}

async fn seat(config: &Config, cmd: SeatCommand) -> Result<(), Failure> {
    use hotline_sip_gateway as gw;
    let db = open_db(config).await?;
    let now = SystemClock.now_ms();
    let realm = &config.sip.realm;
    let result = async {
        match cmd {
            SeatCommand::Add {
                number,
                password,
                password_stdin,
            } => {
                let (pw, show) = seat_password(password, password_stdin)?;
                gw::add_seat(&db.pool, &number, &pw, realm, now)
                    .await
                    .map_err(seat_failure)?;
                cli_audit(&db, "seat.create", &format!("seat:{number}"), "").await?;
                println!("added seat {number}");
                if show {
                    println!("password: {pw}");
                }
            }
            SeatCommand::List => {
                let bindings = gw::list_bindings(&db.pool, now)
                    .await
                    .map_err(Failure::runtime)?;
                println!("{:<8} {:<8} registered contacts", "seat", "state");
                for s in gw::list_seats(&db.pool).await.map_err(Failure::runtime)? {
                    let contacts: Vec<&str> = bindings
                        .iter()
                        .filter(|b| b.seat == s.number)
                        .map(|b| b.contact.as_str())
                        .collect();
                    let state = if s.enabled { "enabled" } else { "disabled" };
                    println!("{:<8} {:<8} {}", s.number, state, contacts.join(", "));
                }
            }
            SeatCommand::Passwd {
                number,
                password,
                password_stdin,
            } => {
                let (pw, show) = seat_password(password, password_stdin)?;
                gw::set_seat_password(&db.pool, &number, &pw, realm, now)
                    .await
                    .map_err(seat_failure)?;
                cli_audit(&db, "seat.password_reset", &format!("seat:{number}"), "").await?;
                println!("password of seat {number} changed");
                if show {
                    println!("password: {pw}");
                }
            }
            SeatCommand::Remove { number } => {
                gw::remove_seat(&db.pool, &number)
                    .await
                    .map_err(seat_failure)?;
                cli_audit(&db, "seat.delete", &format!("seat:{number}"), "").await?;
                println!("removed seat {number}");
            }
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}

fn read_password_line() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(Failure::runtime)?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    password::check_policy(&pw).map_err(|e| Failure::usage(e.to_string()))?;
    Ok(pw)
}

async fn user(config: &Config, cmd: UserCommand) -> Result<(), Failure> {
    let db = open_db(config).await?;
    let now = SystemClock.now_ms();
    let result = async {
        match cmd {
            UserCommand::Add {
                username,
                role,
                display_name,
                password_stdin,
            } => {
                validate_username(&username).map_err(Failure::usage)?;
                let (pw, show) = if password_stdin {
                    (read_password_line()?, false)
                } else {
                    (password::generate(&SystemRng), true)
                };
                let hash = hash_blocking(pw.clone()).await?;
                let display = display_name.unwrap_or_else(|| username.clone());
                db.create_user(
                    now,
                    &SystemRng,
                    NewUser {
                        username: &username,
                        display_name: &display,
                        role,
                        password_hash: &hash,
                    },
                )
                .await
                .map_err(|e| match e {
                    crate::db::StoreError::Conflict(w) => {
                        Failure::usage(format!("{w} already exists"))
                    }
                    other => Failure::runtime(other),
                })?;
                cli_audit(
                    &db,
                    "user.create",
                    &format!("user:{username}"),
                    role.as_str(),
                )
                .await?;
                println!("added {username} ({role})");
                if show {
                    println!("password: {pw}");
                }
            }
            UserCommand::List => {
                println!(
                    "{:<20} {:<18} {:<8} display name",
                    "username", "role", "state"
                );
                for u in db.list_users().await? {
                    let state = if u.disabled { "disabled" } else { "active" };
                    println!(
                        "{:<20} {:<18} {:<8} {}",
                        u.username,
                        u.role.as_str(),
                        state,
                        u.display_name
                    );
                }
            }
            UserCommand::Passwd {
                username,
                password_stdin,
            } => {
                let (pw, show) = if password_stdin {
                    (read_password_line()?, false)
                } else {
                    (password::generate(&SystemRng), true)
                };
                let hash = hash_blocking(pw.clone()).await?;
                let user = db
                    .set_password_hash(now, &username, &hash)
                    .await
                    .map_err(not_found)?;
                db.delete_sessions_of(&user.id).await?;
                cli_audit(&db, "user.password_reset", &format!("user:{username}"), "").await?;
                println!("password of {username} changed");
                if show {
                    println!("password: {pw}");
                }
            }
            UserCommand::Disable { username } => {
                db.set_disabled(now, &username, true)
                    .await
                    .map_err(not_found)?;
                cli_audit(&db, "user.disable", &format!("user:{username}"), "").await?;
                println!("{username} disabled");
            }
            UserCommand::Enable { username } => {
                db.set_disabled(now, &username, false)
                    .await
                    .map_err(not_found)?;
                cli_audit(&db, "user.enable", &format!("user:{username}"), "").await?;
                println!("{username} enabled");
            }
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}

fn not_found(e: crate::db::StoreError) -> Failure {
    match e {
        crate::db::StoreError::NotFound(w) => Failure::usage(format!("{w} not found")),
        other => Failure::runtime(other),
    }
}

/// `hotline ivr check|reload`.
fn ivr(config: &Config, cmd: IvrCommand) -> Result<(), Failure> {
    let lib = crate::contact::Library::load(
        &config.ivr,
        std::path::Path::new("."),
        &crate::contact::prompts::custom_dir(&config.data_dir),
    )
    .map_err(|e| Failure::usage(format!("ivr: {e}")))?;
    println!(
        "flow {:?}: {} nodes, {} prompts: OK",
        lib.flow.name(),
        lib.flow.nodes().len(),
        lib.clips.len()
    );
    if matches!(cmd, IvrCommand::Check) {
        return Ok(());
    }
    let pid_file = crate::server::pid_file(config);
    let pid = std::fs::read_to_string(&pid_file)
        .map_err(|e| {
            Failure::usage(format!(
                "{}: {e} (is `hotline serve` running with this data directory?)",
                pid_file.display()
            ))
        })?
        .trim()
        .parse::<u32>()
        .map_err(|e| Failure::usage(format!("{}: {e}", pid_file.display())))?;
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .map_err(|e| Failure::runtime(format!("cannot run kill: {e}")))?;
    if !status.success() {
        return Err(Failure::usage(format!(
            "process {pid} from {} is not running",
            pid_file.display()
        )));
    }
    println!("reload requested from hotline serve (pid {pid}); its log says when it is done");
    Ok(())
}
