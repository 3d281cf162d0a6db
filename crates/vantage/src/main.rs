//! The `vantage` command.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vantage::demo::{self, DemoPorts};

#[derive(Parser)]
#[command(
    name = "vantage",
    version,
    about = "CCTV video gateway: RTSP cameras to browsers over WebRTC"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a node from a configuration file.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validates a configuration file and lists every problem; exits non-zero if there is one.
    CheckConfig { file: PathBuf },
    /// Verifies an export: recomputes the MP4's size and SHA-256, checks the manifest's signature
    /// and lists every mismatch. Exits 0 only when everything matches.
    VerifyExport {
        /// The exported MP4.
        file: PathBuf,
        /// Its `<id>.manifest.json`.
        manifest: PathBuf,
        /// The node's export public key (SPKI PEM, from `GET /api/v1/exports/public-key`). Without
        /// it the signature is checked against the manifest's own key, which catches damage and
        /// naive edits but not a forger who re-signs with a key of their own.
        #[arg(long, value_name = "PEM_FILE")]
        public_key: Option<PathBuf>,
    },
    /// Exports a recorded range from a running node: asks for it, follows it with a progress
    /// bar, downloads the MP4 to FILE and its signed manifest to FILE.manifest.json, and verifies
    /// both against the node's public key. Exits 0 only when the export verified.
    Export {
        /// The node's URL, e.g. http://127.0.0.1:8088
        #[arg(long)]
        server: String,
        /// The camera id.
        #[arg(long)]
        camera: String,
        /// Start of the range (RFC 3339).
        #[arg(long)]
        from: String,
        /// End of the range (RFC 3339).
        #[arg(long)]
        to: String,
        /// Where the MP4 goes.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Leave the recorded audio out.
        #[arg(long)]
        no_audio: bool,
        /// Who asks (recorded in the manifest and the audit log).
        #[arg(long)]
        created_by: Option<String>,
    },
    /// Local users and service accounts' API keys, in the node's data dir (works while the node
    /// runs; each change is audited with actor `cli`).
    #[command(subcommand)]
    User(UserCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Runs simulators for tests and demonstrations.
    #[command(subcommand)]
    Sim(SimCmd),
    /// Runs a self-contained demo: an XProtect simulator with eight fixture cameras in four
    /// agencies, a node that discovers them, and the web page.
    Demo {
        /// HTTP port (0 picks a free one).
        #[arg(long, default_value_t = 8088)]
        port: u16,
        /// WebRTC media UDP port (0 picks a free one).
        #[arg(long, default_value_t = 8189)]
        udp_port: u16,
        /// Where the demo keeps its management database.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
    },
}

/// The node whose data dir a `user` or `audit` command works on.
#[derive(clap::Args)]
struct ConfigArg {
    /// The node's configuration file (its `storage.data_dir` holds the database).
    #[arg(long)]
    config: PathBuf,
}

#[derive(clap::Args)]
struct PasswordArg {
    /// Read the password from one line of standard input instead of asking twice on the
    /// terminal.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Adds a user: admin, supervisor, operator, viewer, or service (a service account: no
    /// password, API keys only).
    Add {
        username: String,
        #[arg(long)]
        role: String,
        /// An agency the user's rights apply to (repeatable).
        #[arg(long = "agency", value_name = "AGENCY")]
        agencies: Vec<String>,
        /// Every agency, including ones added later.
        #[arg(long, conflicts_with = "agencies")]
        all_agencies: bool,
        #[command(flatten)]
        password: PasswordArg,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Sets a user's password.
    Passwd {
        username: String,
        #[command(flatten)]
        password: PasswordArg,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Disables a user (logins and API keys refused).
    Disable {
        username: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Enables a disabled user.
    Enable {
        username: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Lists the users (never a password hash or a key).
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Creates an API key for a service account and prints it once.
    ApiKey {
        username: String,
        /// What the key is for.
        #[arg(long, default_value = "default")]
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Checks the audit log's hash chain: exit 0 when intact, 1 with the first broken row.
    Verify {
        #[command(flatten)]
        config: ConfigArg,
    },
}

impl UserCmd {
    fn split(self) -> (PathBuf, vantage::users_cli::UserCommand) {
        use vantage::users_cli::{PasswordSource, UserCommand as U};
        let source = |p: PasswordArg| {
            if p.password_stdin {
                PasswordSource::Stdin
            } else {
                PasswordSource::Prompt
            }
        };
        match self {
            UserCmd::Add {
                username,
                role,
                agencies,
                all_agencies,
                password,
                config,
            } => (
                config.config,
                U::Add {
                    username,
                    role,
                    agencies,
                    all_agencies,
                    password: source(password),
                },
            ),
            UserCmd::Passwd {
                username,
                password,
                config,
            } => (
                config.config,
                U::Passwd {
                    username,
                    password: source(password),
                },
            ),
            UserCmd::Disable { username, config } => (config.config, U::Disable { username }),
            UserCmd::Enable { username, config } => (config.config, U::Enable { username }),
            UserCmd::List { config } => (config.config, U::List),
            UserCmd::ApiKey {
                username,
                name,
                config,
            } => (config.config, U::ApiKey { username, name }),
        }
    }
}

#[derive(Subcommand)]
enum SimCmd {
    /// A Milestone XProtect simulator: management server (REST, IDP, SOAP), recording server
    /// (SequencesGet) and RTSP per camera from the fixture clips.
    Xprotect {
        #[arg(long, default_value_t = 8)]
        cameras: usize,
        /// Camera groups, nested (agencies, areas, sub-areas).
        #[arg(long, default_value_t = 25)]
        groups: usize,
        /// Every Nth camera is H.265 (0: none).
        #[arg(long, default_value_t = 4)]
        h265_every: usize,
        #[arg(long, default_value = "rta-integration")]
        username: String,
        #[arg(long, default_value = "sim-password")]
        password: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Delay every answer by this many milliseconds.
        #[arg(long)]
        slow_ms: Option<u64>,
        /// 2023-style numbers sent as strings.
        #[arg(long)]
        numbers_as_strings: bool,
        /// Honour page/size on configuration lists (the real product ignores them).
        #[arg(long)]
        honour_paging: bool,
        /// Issue tokens that are already expired.
        #[arg(long)]
        expire_tokens: bool,
    },
}

/// Log lines go to standard output, in colour only when it is a terminal (and `NO_COLOR` is not
/// set): a log redirected to a file or a pipe holds no ANSI escape codes.
fn init_logging() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .init();
}

fn load(path: &std::path::Path) -> Result<settings::Config, ExitCode> {
    settings::load_file(path, std::env::vars()).map_err(|problems| {
        eprintln!(
            "{}: {} problem{}:",
            path.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        for p in &problems {
            eprintln!("  {p}");
        }
        ExitCode::from(2)
    })
}

/// `vantage verify-export`: the report on standard output; exit 0 when verified, 1 when a check
/// failed, 2 when the public key file cannot be used.
fn verify_export(
    file: &std::path::Path,
    manifest: &std::path::Path,
    public_key: Option<&std::path::Path>,
) -> ExitCode {
    let pem = match public_key.map(evidence::PublicKey::from_pem_file) {
        None => None,
        Some(Ok(k)) => Some(k.to_pem()),
        Some(Err(e)) => {
            eprintln!("vantage verify-export: --public-key {e}");
            return ExitCode::from(2);
        }
    };
    let report = evidence::verify(file, manifest, pem.as_deref());
    print!("{report}");
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::CheckConfig { file } => match load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} agencies, {} cameras)",
                    file.display(),
                    cfg.agencies.len(),
                    cfg.cameras.len()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Cmd::VerifyExport {
            file,
            manifest,
            public_key,
        } => verify_export(&file, &manifest, public_key.as_deref()),
        Cmd::Export {
            server,
            camera,
            from,
            to,
            output,
            no_audio,
            created_by,
        } => {
            let args = vantage::export_cli::ExportArgs {
                server,
                camera,
                from,
                to,
                output,
                include_audio: !no_audio,
                created_by,
                poll: std::time::Duration::from_millis(250),
            };
            match vantage::export_cli::run(&args).await {
                Ok(report) => {
                    print!("{report}");
                    if report.ok() {
                        ExitCode::SUCCESS
                    } else {
                        eprintln!("vantage export: verification failed");
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("vantage export: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::User(cmd) => {
            let (config, cmd) = cmd.split();
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let passwords = auth::Passwords::new();
            match vantage::users_cli::run_user(&cfg, cmd, &passwords).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vantage user: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Audit(AuditCmd::Verify { config }) => {
            let cfg = match load(&config.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match vantage::users_cli::verify_audit(&cfg) {
                Ok(report) => {
                    println!("{report}");
                    if report.ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("vantage audit verify: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Serve { config } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging();
            let node = match vantage::Node::start(cfg).await {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("vantage: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("vantage serving on http://{}/", node.http_addr);
            wait_for_signal().await;
            node.shutdown().await;
            ExitCode::SUCCESS
        }
        Cmd::Sim(SimCmd::Xprotect {
            cameras,
            groups,
            h265_every,
            username,
            password,
            seed,
            slow_ms,
            numbers_as_strings,
            honour_paging,
            expire_tokens,
        }) => {
            init_logging();
            let s = match sim::Simulator::start(sim::SimConfig {
                cameras,
                groups,
                h265_every,
                username,
                password,
                seed,
                ..sim::SimConfig::default()
            })
            .await
            {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("vantage sim xprotect: {e}");
                    return ExitCode::FAILURE;
                }
            };
            s.set_faults(sim::Faults {
                slow: slow_ms.map(std::time::Duration::from_millis),
                numbers_as_strings,
                honour_paging,
                expire_tokens_immediately: expire_tokens,
                ..sim::Faults::default()
            });
            println!("XProtect simulator: {cameras} cameras in {groups} groups");
            println!("  recording server: {}", s.recorder_url());
            println!(
                "A node's configuration for it (with an agency OTHER defined in agencies:):\n"
            );
            println!("{}", s.milestone_yaml());
            println!("READY {}", s.server_url());
            wait_for_signal().await;
            s.shutdown().await;
            ExitCode::SUCCESS
        }
        Cmd::Demo {
            port,
            udp_port,
            data_dir,
        } => {
            init_logging();
            let ports = DemoPorts {
                http: demo::loopback(port),
                udp_port,
                data_dir,
            };
            let d = match demo::start(ports).await {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("vantage demo: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!(
                "Vantage demo: open http://{}/ in a browser (8 cameras, 4 agencies; Ctrl-C stops)",
                d.node.http_addr
            );
            println!(
                "Demo logins (POST /api/v1/auth/login; new passwords on every start, shown only here):"
            );
            for u in &d.users {
                println!(
                    "  {:<24} {:<11} {:<13} {}",
                    u.username,
                    u.role.as_str(),
                    u.agency,
                    u.password.as_str()
                );
            }
            wait_for_signal().await;
            d.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}
