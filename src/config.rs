//! The typed configuration tree and how it is layered.
//!
//! Precedence, lowest first: `Config::default()` < the TOML file < environment variables
//! `SHUYUAN_<SECTION>__<KEY>` < command-line flags (applied by `cli`). This is the only module
//! that reads the environment for configuration; everything else receives a `Config` value.
//! Every section denies unknown keys so a typo is an error naming the key, not a silent default.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "SHUYUAN_";

/// The file read when `--config` is not given, relative to the working directory. It is
/// optional: without it the server runs on the built-in defaults.
pub const DEFAULT_CONFIG_FILE: &str = "config/shuyuan.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub search: SearchConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub federation: FederationConfig,
    pub oai: OaiConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// Seconds between pulls of each peer's catalog feed (a failing peer is retried later,
    /// doubling up to an hour).
    pub poll_interval: u64,
    /// Pull peers in the background. Off: peers sync only when asked (`POST
    /// /api/v1/peers/{id}/sync`, or `shuyuan peer sync`, from cron say).
    pub harvest: bool,
    /// This server's name in `/.well-known/shuyuan`, as peers show it.
    pub name: String,
    /// The Ed25519 key file; empty = `identity.key` in the data directory. Made on first
    /// start (mode 0600). Every node of a cluster must use the same file.
    pub key_file: String,
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self {
            poll_interval: 300,
            harvest: true,
            name: "Shuyuan".into(),
            key_file: String::new(),
        }
    }
}

/// What OAI-PMH harvesters (library catalogs) are told about this server in `Identify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OaiConfig {
    /// The repository's name. Empty means `Shuyuan <host of server.public_url>`.
    pub repository_name: String,
    /// Whom harvesters write to about the repository; the protocol requires one. Empty means
    /// `webmaster@<host of server.public_url>` (the RFC 2142 mailbox), so set it.
    pub admin_email: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on. Port 0 picks a free port (tests use this).
    pub listen: SocketAddr,
    /// The URL residents and peers reach this server at, e.g. `https://learn.example.org`.
    /// Empty means `http://<listen address>`, which is right for a single machine.
    pub public_url: String,
    /// Directory for everything the server keeps on disk by default (SQLite file, objects,
    /// index, keys). Relative paths resolve against the working directory.
    pub data_dir: PathBuf,
    /// Seconds that in-flight requests get to finish after SIGTERM or Ctrl-C.
    pub shutdown_grace_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: String::new(),
            data_dir: PathBuf::from("data"),
            shutdown_grace_seconds: 30,
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` or `postgres://user:password@host:port/database`.
    /// Empty means a SQLite file `shuyuan.db` inside `server.data_dir`.
    pub url: String,
    /// Upper bound on pooled connections.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 10,
        }
    }
}

/// The URL may carry a password, so it never reaches logs through `Debug`.
impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Replaces the password part of `scheme://user:password@host` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where courseware bytes live: a local directory (a path, or `file:///abs/path`) or an
    /// S3-compatible bucket, `s3://bucket`. Empty means the directory `objects` inside
    /// `server.data_dir`.
    pub url: String,
    /// S3 endpoint, e.g. `http://127.0.0.1:9000` for a local S3-compatible server. Empty means
    /// AWS itself, or the `AWS_ENDPOINT` environment variable when set.
    pub s3_endpoint: String,
    /// S3 region; empty means `AWS_REGION`, else `us-east-1`.
    pub s3_region: String,
    /// S3 credentials; empty means `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    /// Allow plain-HTTP endpoints (local test servers). Also set by `AWS_ALLOW_HTTP=true`.
    pub s3_allow_http: bool,
    /// An interrupted upload's leftover object is deleted by the sweep once it is this many
    /// seconds old (the sweep runs on start and hourly).
    pub sweep_grace_seconds: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            s3_endpoint: String::new(),
            s3_region: String::new(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_allow_http: false,
            sweep_grace_seconds: 6 * 3600,
        }
    }
}

/// The secret key never reaches logs through `Debug`.
impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.s3_secret_access_key.is_empty() {
            ""
        } else {
            "***"
        };
        f.debug_struct("StorageConfig")
            .field("url", &self.url)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field("s3_secret_access_key", &secret)
            .field("s3_allow_http", &self.s3_allow_http)
            .field("sweep_grace_seconds", &self.sweep_grace_seconds)
            .finish()
    }
}

impl StorageConfig {
    /// Fills empty S3 settings from the standard `AWS_*` variables, as other S3 tools do.
    fn fill_from_aws_environment(&mut self) {
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let fill = |field: &mut String, name: &str| {
            if field.is_empty()
                && let Some(value) = read(name)
            {
                *field = value;
            }
        };
        fill(&mut self.s3_endpoint, "AWS_ENDPOINT");
        fill(&mut self.s3_region, "AWS_REGION");
        fill(&mut self.s3_access_key_id, "AWS_ACCESS_KEY_ID");
        fill(&mut self.s3_secret_access_key, "AWS_SECRET_ACCESS_KEY");
        if read("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            self.s3_allow_http = true;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Where the tantivy index lives. Empty means the directory `index` inside
    /// `server.data_dir`. Each node of a cluster keeps its own.
    pub index_dir: String,
    /// Milliseconds between checks of the catalog log for changes made on other nodes (this
    /// node's own changes are indexed at once).
    pub poll_interval_ms: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            index_dir: String::new(),
            poll_interval_ms: 1000,
        }
    }
}

impl Config {
    /// The index root directory, with the default filled in.
    pub fn key_file(&self) -> PathBuf {
        if self.federation.key_file.is_empty() {
            self.server.data_dir.join("identity.key")
        } else {
            PathBuf::from(&self.federation.key_file)
        }
    }

    pub fn index_dir(&self) -> PathBuf {
        if self.search.index_dir.is_empty() {
            self.server.data_dir.join("index")
        } else {
            PathBuf::from(&self.search.index_dir)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a sign-in stays valid, in hours.
    pub session_ttl_hours: u64,
    /// Sign-in attempts allowed per minute from one client address.
    pub login_attempts_per_minute_per_ip: u32,
    /// Sign-in attempts allowed per minute for one account, whatever the address.
    pub login_attempts_per_minute_per_account: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl_hours: 24 * 30,
            login_attempts_per_minute_per_ip: 30,
            login_attempts_per_minute_per_account: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest JSON request body accepted, in bytes; larger ones get 413.
    pub max_json_bytes: usize,
    /// Largest courseware file accepted, in bytes; larger uploads get 413 and leave nothing.
    pub max_upload_bytes: u64,
    /// Messages one person may send per second in learning circles (bursts of twice that);
    /// more get a `rate_limited` error frame.
    pub messages_per_second: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_json_bytes: 1024 * 1024,
            max_upload_bytes: 4 * 1024 * 1024 * 1024,
            messages_per_second: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `shuyuan=debug,tower_http=info`. `RUST_LOG`, when
    /// set, takes precedence.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Pretty,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Layers defaults, the file (if `file` is given it must exist; otherwise
    /// `config/shuyuan.toml` is read when present) and the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!(
                        "configuration file {} does not exist",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let mut config = Self::extract(figment)?;
        config.storage.fill_from_aws_environment();
        Ok(config)
    }

    /// Parses a TOML document on top of the defaults, without the environment.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::extract(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml)),
        )
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(|errors| {
            // figment's own message already names the key path and the source (file or env var).
            let all: Vec<String> = errors.into_iter().map(|e| e.to_string()).collect();
            ConfigError(all.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.database.url;
        let known_scheme = url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://");
        if !url.is_empty() && !known_scheme {
            return Err(ConfigError(format!(
                "database.url must start with sqlite: or postgres://, got {:?}",
                redact_url(url)
            )));
        }
        let public = &self.server.public_url;
        let web_scheme = public.starts_with("http://") || public.starts_with("https://");
        if !public.is_empty() && !web_scheme {
            return Err(ConfigError(format!(
                "server.public_url must be an http:// or https:// URL, got {public:?}"
            )));
        }
        let storage = &self.storage.url;
        if storage.contains("://")
            && !(storage.starts_with("s3://") || storage.starts_with("file://"))
        {
            return Err(ConfigError(format!(
                "storage.url must be a directory path, file:///path or s3://bucket, got {storage:?}"
            )));
        }
        let admin_email = &self.oai.admin_email;
        let valid_email =
            admin_email.contains('@') && email_address::EmailAddress::is_valid(admin_email);
        if !admin_email.is_empty() && !valid_email {
            return Err(ConfigError(format!(
                "oai.admin_email must be an e-mail address, got {admin_email:?}"
            )));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError(
                "database.max_connections must be at least 1".into(),
            ));
        }
        if self.auth.login_attempts_per_minute_per_ip == 0
            || self.auth.login_attempts_per_minute_per_account == 0
        {
            return Err(ConfigError(
                "auth.login_attempts_per_minute_* must be at least 1".into(),
            ));
        }
        if self.federation.poll_interval == 0 {
            return Err(ConfigError(
                "federation.poll_interval must be at least 1 (seconds)".into(),
            ));
        }
        Ok(())
    }

    /// The database URL to connect to, with the SQLite default filled in.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}",
                self.server.data_dir.join("shuyuan.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }

    /// The public base URL without a trailing slash, given the address actually bound.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        if self.server.public_url.is_empty() {
            format!("http://{bound}")
        } else {
            self.server.public_url.trim_end_matches('/').to_owned()
        }
    }
}

#[cfg(test)]
// figment's test jail returns figment::Error, which is large; that is fine in tests.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_file_matches_the_built_in_defaults() {
        let shipped = include_str!("../config/shuyuan.toml");
        let parsed = Config::from_toml_str(shipped).expect("the shipped config parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = Config::from_toml_str("[server]\nlisten_on = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.to_string().contains("listen_on"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error_naming_the_key() {
        let err = Config::from_toml_str("[server]\nlisten = \"not an address\"\n").unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }

    #[test]
    fn unsupported_database_scheme_is_rejected() {
        let err = Config::from_toml_str("[database]\nurl = \"mysql://x\"\n").unwrap_err();
        assert!(err.to_string().contains("database.url"), "{err}");
    }

    #[test]
    fn an_oai_admin_email_must_be_an_address() {
        let err = Config::from_toml_str("[oai]\nadmin_email = \"library\"\n").unwrap_err();
        assert!(err.to_string().contains("oai.admin_email"), "{err}");
        let config = Config::from_toml_str("[oai]\nadmin_email = \"library@example.org\"\n");
        assert_eq!(config.unwrap().oai.admin_email, "library@example.org");
    }

    #[test]
    fn empty_database_url_means_sqlite_under_the_data_dir() {
        let config = Config::default();
        assert_eq!(config.database_url(), "sqlite://data/shuyuan.db");
    }

    #[test]
    fn database_password_is_redacted_in_debug_output() {
        let config = DatabaseConfig {
            url: "postgres://shuyuan:s3cret@db:5432/shuyuan".into(),
            max_connections: 1,
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("shuyuan:***@db"), "{shown}");
    }

    #[test]
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("custom.toml", "[server]\nlisten = \"127.0.0.1:9000\"\n")?;
            jail.set_env("SHUYUAN_SERVER__LISTEN", "127.0.0.1:9100");
            let config = Config::load(Some(Path::new("custom.toml"))).expect("loads");
            assert_eq!(config.server.listen.port(), 9100);
            Ok(())
        });
    }

    #[test]
    fn unknown_environment_key_is_an_error_naming_it() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SHUYUAN_SERVER__LISTN", "127.0.0.1:9100");
            let err = Config::load(None).unwrap_err();
            assert!(err.to_string().contains("listn"), "{err}");
            Ok(())
        });
    }
}
