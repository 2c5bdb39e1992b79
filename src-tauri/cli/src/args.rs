//! Owns the command line: every subcommand and flag of `purser`, parsed once into typed values.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "purser", version, about = "Holds the purse strings for your AI agents: a local proxy that pays x402 challenges under per-task grants, with a receipt for every decision.")]
pub struct Cli {
    /// Data dir (ledger, wallet, control file). Default: the platform data dir.
    #[arg(long, global = true, env = "PURSER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (and its control API) on 127.0.0.1 until Ctrl-C or SIGTERM.
    Serve {
        /// Port on 127.0.0.1; 0 picks a free one (printed on the first line).
        #[arg(long, default_value_t = 4020)]
        port: u16,
        /// Seconds in-flight requests get to finish on shutdown.
        #[arg(long, default_value_t = 30)]
        grace_secs: u64,
        /// Raise no desktop notifications for held payments (they still wait for
        /// `purser approvals`). By default they are raised whenever a session bus is reachable.
        #[arg(long)]
        no_notify: bool,
        /// A PEM file of CA certificates upstream TLS also trusts (on top of the web roots):
        /// test CAs, or a corporate TLS proxy's.
        #[arg(long, env = "PURSER_UPSTREAM_CA", value_name = "FILE")]
        upstream_ca: Option<PathBuf>,
    },
    /// The wallet that pays (an encrypted keystore in the data dir).
    #[command(subcommand)]
    Wallet(WalletCmd),
    /// Per-task spending grants.
    #[command(subcommand)]
    Grant(GrantCmd),
    /// Networks and the JSON-RPC URL each is read through.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// The local CA that standard proxy mode intercepts HTTPS with (trust it per agent only).
    #[command(subcommand)]
    Ca(CaCmd),
    /// Payments held for your decision (needs a running `purser serve`).
    #[command(subcommand)]
    Approvals(ApprovalsCmd),
    /// The receipt ledger.
    #[command(subcommand)]
    Receipts(ReceiptsCmd),
    /// Developer tools: demo data for benchmarks and screenshots.
    #[command(subcommand)]
    Dev(crate::timeline::DevCmd),
    /// Standing answers on a grant: auto-approve a host up to a price for a while, or block it.
    #[command(subcommand)]
    Rules(RulesCmd),
    /// Names for payee addresses (shown in prompts next to the address).
    #[command(subcommand)]
    Payee(PayeeCmd),
    /// Pause all spending: every payment is refused (`spending_paused`) until `purser resume`
    /// (kept across restarts; through the running daemon or app when there is one).
    Pause {
        #[arg(long)]
        json: bool,
    },
    /// Resume spending after `purser pause`.
    Resume {
        #[arg(long)]
        json: bool,
    },
    /// Try Purser with nothing real at stake: a local test chain, a real x402 paywall, a demo
    /// wallet and grant, and a sample agent whose calls are paid, asked about or refused.
    Demo(crate::demo::DemoArgs),
    /// Run an agent contained: a private filesystem view, PID and network namespace whose only
    /// way out is Purser, on a grant bound to the run. Exits with the agent's status.
    Run(RunArgs),
    /// Hidden: `__sandbox-init` (the sandbox's first process) and `__sandbox-exec` (tests).
    #[command(flatten)]
    Sandbox(crate::sandbox::SandboxCmd),
}

#[derive(Debug, Subcommand)]
pub enum WalletCmd {
    /// Create a new key, sealed in the vault with a passphrase (PURSER_PASSPHRASE or a prompt).
    New {
        #[arg(long)]
        json: bool,
    },
    /// Import a private key (a file holding 0x-hex) or a standard encrypted keystore (its
    /// passphrase: PURSER_KEYSTORE_PASSPHRASE or a prompt), sealed in the vault.
    Import {
        #[arg(long, required_unless_present = "keystore", conflicts_with = "keystore")]
        key_file: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        keystore: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print the wallet's address.
    Address {
        #[arg(long)]
        json: bool,
    },
    /// Print the private key (after the passphrase and a warning; needs --yes-i-understand or a
    /// confirmation typed on the terminal), or write it as an encrypted keystore with --keystore.
    Export {
        /// Write a standard encrypted keystore (scrypt) here instead, with the wallet's passphrase.
        #[arg(long, value_name = "FILE")]
        keystore: Option<PathBuf>,
        #[arg(long)]
        yes_i_understand: bool,
    },
    /// Unlock the running daemon's wallet; --remember keeps the unlocking secret in the OS
    /// keychain (with no daemon running, it is remembered for the next `purser serve`).
    Unlock {
        #[arg(long)]
        remember: bool,
        #[arg(long)]
        json: bool,
    },
    /// Lock the running daemon's wallet (payments are refused until unlocked); --forget also
    /// deletes the secret the OS keychain remembers.
    Lock {
        #[arg(long)]
        forget: bool,
        #[arg(long)]
        json: bool,
    },
    /// Locked or not, remembered or not, and the address.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The wallet's balance per network (from the ledger's cache; --refresh reads the chain),
    /// what active grants could still spend, and a warning when that is more than it holds.
    Balance {
        #[arg(long)]
        json: bool,
        #[arg(long)]
        refresh: bool,
        /// Only these networks (default: those active grants may pay on).
        #[arg(long = "network")]
        networks: Vec<String>,
    },
    /// How to fund the wallet: its address, the asset and network, an EIP-681 payment URI.
    Fund {
        #[arg(long)]
        json: bool,
        #[arg(long = "network")]
        networks: Vec<String>,
    },
    /// Check receipts against the chain once (Transfer logs; unknown settlements by nonce).
    Reconcile {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// The networks Purser knows, with the RPC URL each is read through.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Read a network through another JSON-RPC URL (or --default: the registry's).
    SetRpc {
        network: String,
        url: Option<String>,
        #[arg(long)]
        default: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct GrantCreate {
    /// What the task is, e.g. "research".
    #[arg(long)]
    pub label: String,
    /// Total the task may spend, in USD (e.g. 5.00).
    #[arg(long)]
    pub budget: String,
    /// How long the grant lasts: 90s, 30m, 2h, 7d.
    #[arg(long)]
    pub expires: String,
    /// A host the task may pay: api.example.com, 127.0.0.1:8080, *.example.org. Repeatable.
    #[arg(long = "host", required = true)]
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub limits: GrantLimits,
    /// The token works only inside `purser run` (each run gets a token of its own).
    #[arg(long)]
    pub only_run: bool,
    #[arg(long)]
    pub json: bool,
}

/// A grant's optional limits, as `grant create` and `run` take them.
#[derive(Debug, Args)]
pub struct GrantLimits {
    /// Only pay these addresses (repeatable; default: any payee).
    #[arg(long = "payee")]
    pub payees: Vec<String>,
    /// Only pay on these networks, e.g. eip155:8453 or base-sepolia (repeatable; default: the
    /// testnets, recorded on the grant).
    #[arg(long = "network")]
    pub networks: Vec<String>,
    /// Allow a testnet and a mainnet in the same grant.
    #[arg(long)]
    pub allow_mixed: bool,
    /// Largest single payment, in USD.
    #[arg(long)]
    pub per_request_max: Option<String>,
    /// Payments below this (USD) are made without asking.
    #[arg(long)]
    pub auto_below: Option<String>,
    /// Payments from the auto tier up to below this (USD) ask you; at or above it they are refused.
    #[arg(long)]
    pub ask_below: Option<String>,
    /// How long a held payment waits for you before it is denied (default 60s).
    #[arg(long)]
    pub approval_timeout: Option<String>,
    /// Standard proxy mode: refuse hosts not listed with --host (default: tunnel them blind).
    #[arg(long)]
    pub only_listed_hosts: bool,
    /// Outside a run, the token works only for a client whose executable is this path.
    #[arg(long, value_name = "PATH")]
    pub only_exe: Option<String>,
}

impl GrantLimits {
    /// The spec of a new grant with these limits.
    pub fn spec(&self, label: String, budget: String, expires: String, hosts: Vec<String>, only_run: bool) -> purser_core::grants::GrantSpec {
        purser_core::grants::GrantSpec {
            label,
            budget,
            expires,
            hosts,
            payees: self.payees.clone(),
            networks: self.networks.clone(),
            per_request_max: self.per_request_max.clone(),
            auto_below: self.auto_below.clone(),
            ask_below: self.ask_below.clone(),
            approval_timeout: self.approval_timeout.clone(),
            only_listed_hosts: self.only_listed_hosts,
            allow_mixed_networks: self.allow_mixed,
            only_run,
            only_exe: self.only_exe.clone(),
        }
    }
}

// One value per process, parsed once: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum GrantCmd {
    /// Create a grant; prints its token once.
    Create(GrantCreate),
    /// List grants.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one grant.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Add USD to a grant's budget.
    TopUp {
        id: String,
        amount: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a grant now (held payments under it are denied).
    Revoke {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Print the shell lines that put one agent behind Purser as a standard HTTP(S) proxy.
    Env {
        id: String,
        /// The grant's token (shown once at creation); default: `$PURSER_GRANT` in the lines.
        #[arg(long)]
        token: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// Write the local CA certificate (PEM) to FILE, or to stdout (creates the CA if needed).
    Export {
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Replace the local CA with a new one (restart `purser serve`; agents must trust the new one).
    Rotate {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCmd {
    /// Payments waiting for a decision.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Approve one held payment.
    Approve {
        id: String,
        /// Approve only if the payment is still exactly this requirement.
        #[arg(long)]
        requirement_hash: Option<String>,
        /// Also let this grant pay this host without asking for this long (e.g. 10m).
        #[arg(long, value_name = "DURATION")]
        allow_for: Option<String>,
        /// With --allow-for: the largest price (USD) paid without asking (default: this one's).
        #[arg(long, value_name = "USD", requires = "allow_for")]
        up_to: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Deny one held payment.
    Deny {
        id: String,
        /// Also refuse every payment to this host under this grant from now on.
        #[arg(long)]
        block_host: bool,
        #[arg(long)]
        json: bool,
    },
    /// Held payments that were denied by timeout since you last looked (and mark them seen).
    Missed {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCmd {
    /// Rules in force (of one grant, or all).
    List {
        #[arg(long)]
        grant: Option<String>,
        /// Include removed rules.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Add a rule to a grant: --allow HOST --up-to USD --for DURATION, or --block HOST.
    Add {
        grant: String,
        /// Pay this host (host, host:port or *.domain) without asking, within the grant's limits.
        #[arg(long, value_name = "HOST", conflicts_with = "block", requires_all = ["up_to", "duration"])]
        allow: Option<String>,
        /// Refuse every payment to this host under the grant.
        #[arg(long, value_name = "HOST", required_unless_present = "allow")]
        block: Option<String>,
        #[arg(long, value_name = "USD")]
        up_to: Option<String>,
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a rule.
    Remove {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PayeeCmd {
    /// Name a payee address; an empty name removes it.
    Label {
        address: String,
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Named payees.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReceiptsCmd {
    /// The latest receipts, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One receipt in full (JSON).
    Show { id: String },
    /// Check the ledger: its hash chain, its archives, each grant's spent total against its
    /// receipts, each payment's nonce commitment, and (unless --offline) the wallet's
    /// authorizations on chain against the receipts. Exits non-zero naming every problem.
    Verify {
        #[arg(long)]
        json: bool,
        /// A head printed before (`purser receipts head`): it must still be a receipt of the
        /// chain, so a truncation back past it is caught.
        #[arg(long, value_name = "HEAD")]
        expect_head: Option<String>,
        /// Do not ask the networks' RPCs.
        #[arg(long)]
        offline: bool,
    },
    /// The chain's head: `{count, head}` (keep it somewhere else for `verify --expect-head`).
    Head {
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Timeline(crate::timeline::TimelineCmd),
}

/// `purser run [--grant ID | grant create's flags] [--allow-write PATH]... [--keep-grant] -- CMD`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run on this existing grant (its token from `PURSER_GRANT`, else the passphrase is asked).
    #[arg(long, conflicts_with_all = ["budget", "expires", "hosts"])]
    pub grant: Option<String>,
    /// The run's label (shown in prompts and receipts; `run:LABEL` finds them); for a new grant,
    /// also its label.
    #[arg(long)]
    pub label: Option<String>,
    /// A new grant for the run: total it may spend, in USD.
    #[arg(long)]
    pub budget: Option<String>,
    /// A new grant for the run: how long it lasts (90s, 30m, 2h, 7d).
    #[arg(long)]
    pub expires: Option<String>,
    /// A new grant for the run: a host it may pay (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub limits: GrantLimits,
    /// Another writable path inside the sandbox (repeatable; the working dir always is).
    #[arg(long = "allow-write", value_name = "PATH")]
    pub allow_write: Vec<std::path::PathBuf>,
    /// The working dir (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<std::path::PathBuf>,
    /// Keep the grant made for the run after it ends (default: it is revoked).
    #[arg(long)]
    pub keep_grant: bool,
    /// The agent's command and arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<std::ffi::OsString>,
}
