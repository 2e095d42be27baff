//! The command line: `serve` (the default), `migrate`, `user add`, `institution add`.
//! Every command reads the same configuration as `serve`; flags override it.

// Doc comments here are the `--help` text users read, where Markdown backticks would show.
#![allow(clippy::doc_markdown)]

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::accounts::{self, AccountsError, NewAccount};
use crate::config::Config;
use crate::error::FieldError;
use crate::institutions::{self, InstitutionsError, NewInstitution};
use crate::startup::{Application, open_catalog, open_database};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Parser)]
#[command(
    name = "shuyuan",
    version,
    about = "Open learning platform for community education"
)]
pub struct Cli {
    /// Configuration file [default: config/shuyuan.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overrides database.url (sqlite://FILE or postgres://USER@HOST/DB)
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Overrides server.data_dir
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given)
    Serve(ServeArgs),
    /// Apply pending database migrations and exit
    Migrate,
    /// Manage accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Manage institutions
    #[command(subcommand)]
    Institution(InstitutionCommand),
    /// Rebuild the search index from the database; a running server switches to it
    Reindex,
    /// Federation peers: other Shuyuan servers whose catalogs this one follows
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Import courses from DIR/manifest.json (see README, "Bulk import"); safe to re-run
    Import {
        /// Directory holding manifest.json and the files it names
        dir: PathBuf,
        /// Slug of the institution that publishes the courses
        #[arg(long)]
        institution: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Add a peer: fetch its /.well-known/shuyuan, pin its key and follow its feed
    Add {
        /// The peer's address, e.g. https://county.example
        url: String,
        /// How residents get the peer's files: redirect (to their origin) or mirror (copy here)
        #[arg(long, default_value = "redirect")]
        media: String,
    },
    /// List peers with their sync state
    List,
    /// Pull peers' feeds now, until each has nothing new
    Sync {
        /// A peer's id, server id or address; all peers when left out
        peer: Option<String>,
    },
}

#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Overrides server.listen, e.g. 0.0.0.0:8080
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Overrides server.public_url
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Load the bundled demo catalog (a few bilingual courses with video, subtitles and
    /// documents) before serving; safe to repeat
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from standard input (prompted on a terminal),
    /// never from the command line, where other users could see it.
    Add {
        email: String,
        /// Display name
        #[arg(long)]
        name: String,
        /// Make the account a site administrator
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum InstitutionCommand {
    /// Register an institution
    Add {
        /// Short handle, e.g. xihu-community-college
        slug: String,
        #[arg(long)]
        name: String,
        /// county_college, community_school, teaching_point, school, university,
        /// vocational_college, open_university, training_org, library, museum, science_museum,
        /// cultural_center, sports_venue, enterprise or other
        #[arg(long)]
        kind: String,
        /// province/city/county/town/village, e.g. zhejiang/hangzhou/xihu
        #[arg(long)]
        region: String,
    },
}

impl Cli {
    /// Loads the configuration and applies the flags on top of it.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(url) = &self.database_url {
            config.database.url = url.clone();
        }
        if let Some(dir) = &self.data_dir {
            config.server.data_dir = dir.clone();
        }
        if let Some(Command::Serve(args)) = &self.command {
            if let Some(listen) = args.listen {
                config.server.listen = listen;
            }
            if let Some(url) = &args.public_url {
                config.server.public_url = url.clone();
            }
        }
        Ok(config)
    }
}

pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => {
            let app = Application::build(config).await?;
            if args.demo {
                crate::demo::load(app.state()).await?;
            }
            app.run_until_stopped().await
        }
        Command::Migrate => {
            open_database(&config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::User(UserCommand::Add { email, name, admin }) => {
            let password = read_password()?;
            let db = open_database(&config).await?;
            let account = NewAccount {
                email: &email,
                display_name: &name,
                password: &password,
                is_admin: admin,
            };
            let user =
                accounts::create_account(&db, account)
                    .await
                    .map_err(|error| match error {
                        AccountsError::Invalid(fields) => invalid(&fields),
                        other => anyhow::Error::new(other),
                    })?;
            let role = if user.is_admin {
                "site administrator"
            } else {
                "user"
            };
            println!(
                "created {role} {} <{}> ({})",
                user.display_name, user.email, user.id
            );
            Ok(())
        }
        Command::Institution(InstitutionCommand::Add {
            slug,
            name,
            kind,
            region,
        }) => {
            let db = open_database(&config).await?;
            let new = NewInstitution {
                slug: &slug,
                name: &name,
                kind: &kind,
                region: &region,
            };
            let institution =
                institutions::create(&db, new)
                    .await
                    .map_err(|error| match error {
                        InstitutionsError::Invalid(fields) => invalid(&fields),
                        other => anyhow::Error::new(other),
                    })?;
            println!(
                "registered {} ({}, {}) in {}",
                institution.slug, institution.name, institution.kind, institution.region
            );
            Ok(())
        }
        Command::Import { dir, institution } => import(&config, &dir, &institution).await,
        Command::Reindex => reindex(&config).await,
        Command::Peer(command) => peer(&config, command).await,
    }
}

async fn peer(config: &Config, command: PeerCommand) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let catalog = open_catalog(config, &db, config.public_url(config.server.listen).into())?;
    let federation = crate::federation::Federation::open(config, db, catalog, false).await?;
    match command {
        PeerCommand::Add { url, media } => {
            let media = crate::federation::MediaPolicy::parse(&media)
                .map_err(|e| anyhow::anyhow!("--media: {e}"))?;
            let peer = federation.add_peer(&url, media).await?;
            println!(
                "added peer {} ({}) with key {}; id {}",
                peer.server_id, peer.name, peer.public_key, peer.id
            );
        }
        PeerCommand::List => {
            let (peers, origins) = federation.peers().await?;
            if peers.is_empty() {
                println!("no peers; add one with `shuyuan peer add URL`");
            }
            for p in peers {
                let last_sync = p
                    .last_sync_at_ms
                    .map_or_else(|| "never".to_owned(), crate::db::rfc3339);
                println!(
                    "{}  {}  {} ({})\n    media {}, last sync {last_sync}, last seq {}, \
                     received {}, rejected {}, failures in a row {}{}",
                    p.id,
                    p.url,
                    p.name,
                    p.server_id,
                    p.media,
                    p.last_seq,
                    p.records_received,
                    p.records_rejected,
                    p.failures,
                    p.last_error
                        .map(|e| format!("\n    last error: {e}"))
                        .unwrap_or_default(),
                );
            }
            println!("{} origin key(s) pinned", origins.len());
        }
        PeerCommand::Sync { peer } => {
            let (peers, _) = federation.peers().await?;
            let chosen: Vec<_> = peers
                .into_iter()
                .filter(|p| {
                    peer.as_deref().is_none_or(|wanted| {
                        p.id.to_string() == wanted || p.server_id == wanted || p.url == wanted
                    })
                })
                .collect();
            if chosen.is_empty() {
                anyhow::bail!("no such peer; see `shuyuan peer list`");
            }
            let mut failed = 0;
            for p in chosen {
                match federation.sync(p.id).await {
                    Ok(r) => println!(
                        "{}: {} received, {} applied, {} skipped, {} rejected, now at seq {}{}",
                        p.server_id,
                        r.received,
                        r.applied,
                        r.skipped,
                        r.rejected,
                        r.last_seq,
                        if r.new_origins.is_empty() {
                            String::new()
                        } else {
                            format!("; pinned new origins: {}", r.new_origins.join(", "))
                        }
                    ),
                    Err(error) => {
                        failed += 1;
                        eprintln!("{}: {error}", p.server_id);
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} peer(s) failed to sync");
            }
        }
    }
    Ok(())
}

async fn reindex(config: &Config) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let catalog = open_catalog(config, &db, config.public_url(config.server.listen).into())?;
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("reindex [{bar:30}] {pos}/{len} courses {per_sec} eta {eta}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    let report = crate::search::rebuild::rebuild(&catalog, &config.index_dir(), &progress).await?;
    println!(
        "rebuilt the search index: {} courses up to catalog seq {} in {}",
        report.courses, report.seq, report.generation
    );
    Ok(())
}

async fn import(config: &Config, dir: &Path, institution: &str) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let origin = config.public_url(config.server.listen);
    let catalog = open_catalog(config, &db, origin.into())?;
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    let report = crate::import::run(&catalog, dir, institution, &progress)
        .await
        .map_err(|reason| anyhow::anyhow!(reason))?;
    println!(
        "courses: {} created, {} already there; files: {} stored, {} already there; {} failed",
        report.courses_created,
        report.courses_already_there,
        report.files_stored,
        report.files_already_there,
        report.failures.len()
    );
    for (item, reason) in &report.failures {
        println!("  failed {item}: {reason}");
    }
    if report.failures.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} item(s) failed; fix them and run the import again",
            report.failures.len()
        )
    }
}

fn invalid(fields: &[FieldError]) -> anyhow::Error {
    let lines: Vec<String> = fields
        .iter()
        .map(|f| format!("  {}: {}", f.field, f.message))
        .collect();
    anyhow::anyhow!("invalid input:\n{}", lines.join("\n"))
}

/// Prompts twice on a terminal; otherwise reads one line, so scripts can pipe it in.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let again = rpassword::prompt_password("Repeat: ").context("reading the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_serve() {
        let cli = Cli::try_parse_from(["shuyuan"]).unwrap();
        assert!(cli.command.is_none());
    }

    #[test]
    fn password_is_not_accepted_as_an_argument() {
        let result = Cli::try_parse_from([
            "shuyuan",
            "user",
            "add",
            "a@example.org",
            "--name",
            "A",
            "--password",
            "x",
        ]);
        assert!(result.is_err());
    }
}
