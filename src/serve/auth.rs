//! SCRAM-SHA-256 verifiers and exchanges, and the configured users.
//!
//! The server side of RFC 5802/7677 works from the stored verifier alone (StoredKey and
//! ServerKey, as PostgreSQL does), so the server never holds anything password-equivalent.
//! Written here rather than taken from pgwire's SCRAM handler, which asks for the salted
//! password (password-equivalent) and cannot answer from `strata passwd`'s verifiers.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;

use aws_lc_rs::{constant_time, digest, hmac, pbkdf2};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;

use super::errors::sqlstate;
use crate::config::ServerConfig;

/// Iterations `strata passwd` uses: PostgreSQL's default.
pub const DEFAULT_ITERATIONS: NonZeroU32 = NonZeroU32::new(4096).unwrap();
/// `name=verifier;name=verifier`, adding to (and overriding) `[server.users]`.
pub const USERS_ENV: &str = "STRATA_USERS";

const PREFIX: &str = "SCRAM-SHA-256$";
const SALT_LEN: usize = 16;
/// Random bytes in the server's part of the nonce (PostgreSQL's length).
const NONCE_LEN: usize = 18;

type Key = [u8; digest::SHA256_OUTPUT_LEN];

#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error(
        "not a SCRAM-SHA-256 verifier: expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (`strata passwd` prints one)"
    )]
    Format,
    #[error("the iteration count must be a positive integer")]
    Iterations,
    #[error("the {0} is not valid base64")]
    Base64(&'static str),
    #[error("the salt is empty")]
    EmptySalt,
    #[error("the {field} is {len} bytes long, not 32")]
    KeyLength { field: &'static str, len: usize },
}

/// Why an exchange failed. Protocol violations and a wrong password are told apart because
/// PostgreSQL reports them with different SQLSTATEs.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("SCRAM protocol violation: {0}")]
    Protocol(&'static str),
    #[error("password authentication failed")]
    Failed,
}

impl AuthError {
    /// The SQLSTATE PostgreSQL sends for this failure.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::Protocol(_) => sqlstate::PROTOCOL_VIOLATION,
            Self::Failed => sqlstate::INVALID_PASSWORD,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("server.auth = {0:?}: expected \"trust\" or \"scram-sha-256\"")]
    UnknownMethod(String),
    #[error(
        "server.auth = \"trust\" is allowed only on a loopback listen address, and server.listen is {listen:?}: use scram-sha-256 with users made by `strata passwd`"
    )]
    TrustNotLoopback { listen: String },
    #[error(
        "server.auth is scram-sha-256 (server.listen is {listen:?}) but no users are configured: add [server.users] entries made by `strata passwd`, or set {}",
        USERS_ENV
    )]
    NoUsers { listen: String },
    #[error("user {name:?} in {origin}: {source}")]
    Verifier {
        name: String,
        origin: &'static str,
        source: VerifierError,
    },
    #[error("{}: entry {position} is not name=verifier", USERS_ENV)]
    Entry { position: usize },
}

/// A user's stored SCRAM-SHA-256 credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    stored_key: Key,
    server_key: Key,
}

impl Verifier {
    /// A verifier for `password` with a fresh random salt; the password is not kept.
    pub fn from_password(password: &str, iterations: NonZeroU32) -> Self {
        let mut salt = vec![0; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        Self::derive(password, salt, iterations)
    }

    fn derive(password: &str, salt: Vec<u8>, iterations: NonZeroU32) -> Self {
        let mut salted = [0; digest::SHA256_OUTPUT_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            saslprep(password).as_bytes(),
            &mut salted,
        );
        Self {
            iterations,
            salt,
            stored_key: sha256(&hmac_sha256(&salted, b"Client Key")),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }
}

/// As PostgreSQL and libpq: a password SASLprep rejects is used as it is.
fn saslprep(password: &str) -> Cow<'_, str> {
    stringprep::saslprep(password).unwrap_or(Cow::Borrowed(password))
}

impl FromStr for Verifier {
    type Err = VerifierError;

    fn from_str(text: &str) -> Result<Self, VerifierError> {
        let (params, keys) = text
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('$'))
            .ok_or(VerifierError::Format)?;
        let (iterations, salt) = params.split_once(':').ok_or(VerifierError::Format)?;
        let (stored_key, server_key) = keys.split_once(':').ok_or(VerifierError::Format)?;
        let salt = decode("salt", salt)?;
        if salt.is_empty() {
            return Err(VerifierError::EmptySalt);
        }
        Ok(Self {
            iterations: iterations.parse().map_err(|_| VerifierError::Iterations)?,
            salt,
            stored_key: decode_key("StoredKey", stored_key)?,
            server_key: decode_key("ServerKey", server_key)?,
        })
    }
}

fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, VerifierError> {
    BASE64
        .decode(text)
        .map_err(|_| VerifierError::Base64(field))
}

fn decode_key(field: &'static str, text: &str) -> Result<Key, VerifierError> {
    let bytes = decode(field, text)?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| VerifierError::KeyLength { field, len })
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(self.stored_key),
            BASE64.encode(self.server_key)
        )
    }
}

/// The keys stay out of logs: with a sniffed exchange, StoredKey is enough to log in.
impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// The verifier text for `password` (`strata passwd`).
pub fn hash_password(password: &str) -> String {
    Verifier::from_password(password, DEFAULT_ITERATIONS).to_string()
}

/// A SCRAM-SHA-256 exchange waiting for the client-final-message.
pub struct ScramExchange {
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    stored_key: Key,
    server_key: Key,
}

impl ScramExchange {
    /// Answers the client-first-message (the SASLInitialResponse data) with the
    /// server-first-message. The user name inside it is ignored: as in PostgreSQL, the user
    /// is the one from the startup message, whose verifier the caller passes.
    pub fn start(verifier: &Verifier, client_first: &[u8]) -> Result<(Vec<u8>, Self), AuthError> {
        let mut nonce = [0; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        Self::start_with_nonce(verifier, client_first, &BASE64.encode(nonce))
    }

    fn start_with_nonce(
        verifier: &Verifier,
        client_first: &[u8],
        server_nonce: &str,
    ) -> Result<(Vec<u8>, Self), AuthError> {
        let message = utf8(client_first)?;
        let (gs2_header, bare) = split_gs2_header(message)?;
        let client_nonce = client_nonce(bare)?;
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&verifier.salt),
            verifier.iterations
        );
        let exchange = Self {
            gs2_header: gs2_header.to_string(),
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
            stored_key: verifier.stored_key,
            server_key: verifier.server_key,
        };
        Ok((server_first.into_bytes(), exchange))
    }

    /// Checks the client-final-message (the SASLResponse data) and returns the
    /// server-final-message to send with AuthenticationSASLFinal.
    pub fn finish(self, client_final: &[u8]) -> Result<Vec<u8>, AuthError> {
        let message = utf8(client_final)?;
        let (without_proof, proof) = message
            .rsplit_once(",p=")
            .ok_or(AuthError::Protocol("the client-final-message has no proof"))?;
        let mut attributes = without_proof.split(',');
        let binding =
            attributes
                .next()
                .and_then(|a| a.strip_prefix("c="))
                .ok_or(AuthError::Protocol(
                    "the client-final-message has no channel binding",
                ))?;
        // With no channel binding the attribute is just the GS2 header again.
        if BASE64.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(AuthError::Protocol("channel binding check failed"));
        }
        if attributes.next().and_then(|a| a.strip_prefix("r=")) != Some(self.nonce.as_str()) {
            return Err(AuthError::Protocol("nonce mismatch"));
        }
        let proof: Key = BASE64
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(AuthError::Protocol("malformed client proof"))?;

        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let signature = hmac_sha256(&self.stored_key, auth_message.as_bytes());
        let client_key: Key = std::array::from_fn(|i| proof[i] ^ signature[i]);
        constant_time::verify_slices_are_equal(&sha256(&client_key), &self.stored_key)
            .map_err(|_| AuthError::Failed)?;
        let server_signature = hmac_sha256(&self.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }
}

fn utf8(message: &[u8]) -> Result<&str, AuthError> {
    std::str::from_utf8(message).map_err(|_| AuthError::Protocol("the message is not UTF-8"))
}

/// Splits `gs2-header client-first-message-bare`, accepting only the flags for "no channel
/// binding": `n` (client cannot bind) and `y` (client could, but thinks the server cannot,
/// which is true since only SCRAM-SHA-256, not -PLUS, is offered).
fn split_gs2_header(message: &str) -> Result<(&str, &str), AuthError> {
    let mut parts = message.splitn(3, ',');
    let (Some(flag), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(AuthError::Protocol("malformed client-first-message"));
    };
    match flag {
        "n" | "y" => {}
        _ if flag.starts_with("p=") => {
            return Err(AuthError::Protocol(
                "channel binding requested, but only SCRAM-SHA-256 is offered",
            ));
        }
        _ => return Err(AuthError::Protocol("unknown channel binding flag")),
    }
    if !authzid.is_empty() {
        return Err(AuthError::Protocol(
            "authorization identities are not supported",
        ));
    }
    Ok((&message[..message.len() - bare.len()], bare))
}

/// The nonce from `[m=ext,]n=user,r=nonce[,extensions]`.
fn client_nonce(bare: &str) -> Result<&str, AuthError> {
    let mut attributes = bare.split(',');
    let user = attributes
        .next()
        .ok_or(AuthError::Protocol("malformed client-first-message"))?;
    if user.starts_with("m=") {
        return Err(AuthError::Protocol(
            "mandatory extensions are not supported",
        ));
    }
    if !user.starts_with("n=") {
        return Err(AuthError::Protocol(
            "the client-first-message has no user name",
        ));
    }
    attributes
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|nonce| !nonce.is_empty() && nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .ok_or(AuthError::Protocol(
            "the client-first-message has no valid nonce",
        ))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Key {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    tag.as_ref().try_into().expect("HMAC-SHA-256 is 32 bytes")
}

fn sha256(data: &[u8]) -> Key {
    let hash = digest::digest(&digest::SHA256, data);
    hash.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// The users who may log in, by name.
#[derive(Debug)]
pub struct Users {
    verifiers: BTreeMap<String, Verifier>,
    /// Secret per server start behind the stand-in verifiers of unknown names.
    mock_secret: Key,
}

impl Users {
    /// `[server.users]` plus `STRATA_USERS`, which wins for a name in both.
    pub fn from_config(config: &ServerConfig) -> Result<Self, PolicyError> {
        Self::parse(&config.users, std::env::var(USERS_ENV).ok().as_deref())
    }

    fn parse(
        configured: &BTreeMap<String, String>,
        env: Option<&str>,
    ) -> Result<Self, PolicyError> {
        let mut verifiers = BTreeMap::new();
        for (name, text) in configured {
            verifiers.insert(name.clone(), parse_user(name, text, "[server.users]")?);
        }
        let entries = env.unwrap_or_default().split(';').map(str::trim);
        for (index, entry) in entries.enumerate().filter(|(_, e)| !e.is_empty()) {
            let (name, text) = entry
                .split_once('=')
                .filter(|(name, _)| !name.trim().is_empty())
                .ok_or(PolicyError::Entry {
                    position: index + 1,
                })?;
            let name = name.trim();
            verifiers.insert(name.to_string(), parse_user(name, text, USERS_ENV)?);
        }
        let mut mock_secret = [0; digest::SHA256_OUTPUT_LEN];
        rand::rng().fill_bytes(&mut mock_secret);
        Ok(Self {
            verifiers,
            mock_secret,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.verifiers.is_empty()
    }

    /// The verifier to run the exchange against. For an unknown name it is a stand-in that
    /// no password matches, with a salt that stays the same for that name like a real
    /// user's, so a client cannot tell unknown users from wrong passwords.
    pub fn verifier(&self, name: &str) -> Cow<'_, Verifier> {
        match self.verifiers.get(name) {
            Some(verifier) => Cow::Borrowed(verifier),
            None => Cow::Owned(self.mock(name)),
        }
    }

    fn mock(&self, name: &str) -> Verifier {
        let salt = hmac_sha256(&self.mock_secret, name.as_bytes());
        let mut keys = [0; 2 * digest::SHA256_OUTPUT_LEN];
        rand::rng().fill_bytes(&mut keys);
        let (stored_key, server_key) = keys.split_at(digest::SHA256_OUTPUT_LEN);
        Verifier {
            iterations: DEFAULT_ITERATIONS,
            salt: salt[..SALT_LEN].to_vec(),
            stored_key: stored_key.try_into().expect("split in halves"),
            server_key: server_key.try_into().expect("split in halves"),
        }
    }
}

fn parse_user(name: &str, text: &str, origin: &'static str) -> Result<Verifier, PolicyError> {
    text.trim().parse().map_err(|source| PolicyError::Verifier {
        name: name.to_string(),
        origin,
        source,
    })
}

/// How clients prove who they are.
#[derive(Debug)]
pub enum AuthPolicy {
    /// Anyone who can reach the loopback listener is let in.
    Trust,
    Scram(Users),
}

impl AuthPolicy {
    /// `server.auth`, defaulting to trust on loopback and scram-sha-256 elsewhere. Users are
    /// parsed even under trust so a broken verifier is reported before it is needed.
    pub fn from_config(config: &ServerConfig) -> Result<Self, PolicyError> {
        Self::decide(config, Users::from_config(config)?)
    }

    fn decide(config: &ServerConfig, users: Users) -> Result<Self, PolicyError> {
        let loopback = is_loopback(&config.listen);
        match config.auth.as_deref() {
            Some("trust") if !loopback => Err(PolicyError::TrustNotLoopback {
                listen: config.listen.clone(),
            }),
            Some("trust") => Ok(Self::Trust),
            None if loopback => Ok(Self::Trust),
            None | Some("scram-sha-256") if users.is_empty() => Err(PolicyError::NoUsers {
                listen: config.listen.clone(),
            }),
            None | Some("scram-sha-256") => Ok(Self::Scram(users)),
            Some(other) => Err(PolicyError::UnknownMethod(other.to_string())),
        }
    }
}

/// Whether `host:port` (or a bare host) names only this machine. Host names other than
/// `localhost` count as remote: what they resolve to can change.
fn is_loopback(listen: &str) -> bool {
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return addr.ip().to_canonical().is_loopback();
    }
    let host = match listen.parse::<IpAddr>() {
        Ok(ip) => return ip.to_canonical().is_loopback(),
        Err(_) => listen.rsplit_once(':').map_or(listen, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
}

#[cfg(test)]
mod tests {
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    use super::*;

    /// Made by PostgreSQL 15 (`CREATE ROLE … PASSWORD 'pw'` with scram-sha-256).
    const POSTGRES_PW: &str = "SCRAM-SHA-256$4096:lXhUZD40bRm0yNASz+arwg==$t15l+d5d1/xmC8NuGZGhKZkz4DEWi0XuRDpinfAr2sY=:q3Z9+yrqgW5BRD4kwNLVb1B7QIUQ5vPJLy0XhjtvOVM=";
    /// Made by PostgreSQL 15 for `I<soft hyphen>X`, which SASLprep maps to `IX`.
    const POSTGRES_SOFT_HYPHEN: &str = "SCRAM-SHA-256$4096:eAgk96viayx9pyVJ2QfDTA==$Jz87F8dYxsvVOXbJgjPyzfqCyKBD4M14QnhLrX3pcMo=:RLW3Swujv7AcJgCLvlfnxSkM9vp6S3/8cQIjpOaLRZo=";

    /// Runs a whole exchange with libpq's behaviour as implemented by `postgres-protocol`,
    /// including the client's check of the server signature.
    fn login(
        verifier: &Verifier,
        password: &str,
        binding: ChannelBinding,
    ) -> Result<(), AuthError> {
        let mut client = ScramSha256::new(password.as_bytes(), binding);
        let (server_first, exchange) = ScramExchange::start(verifier, client.message())?;
        client
            .update(&server_first)
            .expect("client accepts server-first");
        let server_final = exchange.finish(client.message())?;
        client
            .finish(&server_final)
            .expect("client accepts the server signature");
        Ok(())
    }

    fn ok(verifier: &Verifier, password: &str) -> bool {
        login(verifier, password, ChannelBinding::unsupported()).is_ok()
    }

    #[test]
    fn rfc_7677_test_vector() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = Verifier::derive("pencil", salt, DEFAULT_ITERATIONS);
        let (server_first, exchange) = ScramExchange::start_with_nonce(
            &verifier,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        .unwrap();
        assert_eq!(
            server_first,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let server_final = exchange
            .finish(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(
            server_final,
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn real_client_logs_in_with_the_right_password_only() {
        let verifier = Verifier::from_password("s3cret", DEFAULT_ITERATIONS);
        assert!(login(&verifier, "s3cret", ChannelBinding::unsupported()).is_ok());
        assert!(login(&verifier, "s3cret", ChannelBinding::unrequested()).is_ok());
        let wrong = login(&verifier, "s3creT", ChannelBinding::unsupported()).unwrap_err();
        assert!(matches!(wrong, AuthError::Failed));
        assert_eq!(wrong.sqlstate(), "28P01");
    }

    #[test]
    fn verifier_made_by_postgresql() {
        let verifier: Verifier = POSTGRES_PW.parse().unwrap();
        assert_eq!(verifier.to_string(), POSTGRES_PW);
        assert!(ok(&verifier, "pw"));
        assert!(!ok(&verifier, "pw "));
        let soft_hyphen: Verifier = POSTGRES_SOFT_HYPHEN.parse().unwrap();
        assert!(ok(&soft_hyphen, "IX"));
        assert!(ok(&soft_hyphen, "I\u{AD}X"));
    }

    #[test]
    fn hashing_applies_saslprep_and_a_fresh_salt() {
        let verifier = Verifier::from_password("I\u{AD}X", DEFAULT_ITERATIONS);
        assert!(ok(&verifier, "IX"));
        let text = hash_password("pw");
        assert!(text.starts_with("SCRAM-SHA-256$4096:"), "{text}");
        assert_ne!(text, hash_password("pw"));
        assert!(ok(&text.parse().unwrap(), "pw"));
    }

    #[test]
    fn verifier_made_by_postgres_protocol() {
        let text = postgres_protocol::password::scram_sha_256(b"other pw");
        assert!(ok(&text.parse().unwrap(), "other pw"));
    }

    #[test]
    fn malformed_verifiers_are_explained() {
        let cases = [
            ("md5abc", "not a SCRAM-SHA-256 verifier"),
            (
                "SCRAM-SHA-256$4096:c2FsdA==",
                "not a SCRAM-SHA-256 verifier",
            ),
            ("SCRAM-SHA-256$0:c2FsdA==$a:b", "iteration count"),
            (
                "SCRAM-SHA-256$4096:c2F*dA==$a:b",
                "salt is not valid base64",
            ),
            ("SCRAM-SHA-256$4096:$a:b", "salt is empty"),
            (
                "SCRAM-SHA-256$4096:c2FsdA==$c2FsdA==:b",
                "StoredKey is 4 bytes long",
            ),
        ];
        for (text, expected) in cases {
            let error = text.parse::<Verifier>().unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn debug_hides_the_keys() {
        let verifier: Verifier = POSTGRES_PW.parse().unwrap();
        let debug = format!("{verifier:?}");
        assert!(
            !debug.contains("t15l") && !debug.contains("q3Z9"),
            "{debug}"
        );
    }

    #[test]
    fn protocol_violations_are_not_password_failures() {
        let verifier: Verifier = POSTGRES_PW.parse().unwrap();
        let start = |first: &[u8]| {
            ScramExchange::start(&verifier, first)
                .map(|_| ())
                .unwrap_err()
        };
        for first in [
            &b"p=tls-server-end-point,,n=,r=abc"[..],
            b"n,a=admin,n=,r=abc",
            b"x,,n=,r=abc",
            b"n,,m=ext,n=,r=abc",
            b"n,,n=,r=",
            b"n,,n=",
            b"\xff",
        ] {
            assert_eq!(start(first).sqlstate(), "08P01", "{first:?}");
        }
        let final_with = |last: &str| {
            let (_, exchange) = ScramExchange::start(&verifier, b"n,,n=,r=abc").unwrap();
            exchange.finish(last.as_bytes()).unwrap_err()
        };
        let proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert!(matches!(
            final_with(&format!("c=eSws,r=abc,{proof}")),
            AuthError::Protocol("channel binding check failed")
        ));
        assert!(matches!(
            final_with(&format!("c=biws,r=abcd,{proof}")),
            AuthError::Protocol("nonce mismatch")
        ));
        assert!(matches!(final_with("c=biws,r=abc"), AuthError::Protocol(_)));
    }

    fn users(configured: &[(&str, &str)], env: Option<&str>) -> Result<Users, PolicyError> {
        let configured = configured
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect();
        Users::parse(&configured, env)
    }

    #[test]
    fn users_come_from_config_and_environment() {
        let env = format!(
            " bob = {POSTGRES_SOFT_HYPHEN} ;alice={};",
            hash_password("new")
        );
        let users = users(&[("alice", POSTGRES_PW)], Some(&env)).unwrap();
        assert!(ok(&users.verifier("bob"), "IX"));
        assert!(ok(&users.verifier("alice"), "new"), "the environment wins");
        assert!(!ok(&users.verifier("alice"), "pw"));
    }

    #[test]
    fn bad_users_name_the_user_and_origin() {
        let error = users(&[("carol", "md5x")], None).unwrap_err().to_string();
        assert!(error.contains("\"carol\" in [server.users]"), "{error}");
        let error = users(&[], Some(&format!("a={POSTGRES_PW};oops")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("STRATA_USERS: entry 2"), "{error}");
        assert!(!error.contains("t15l"), "{error}");
    }

    #[test]
    fn unknown_users_look_like_wrong_passwords() {
        let users = users(&[("alice", POSTGRES_PW)], None).unwrap();
        let server_first = |name: &str| {
            let verifier = users.verifier(name);
            let (first, _) = ScramExchange::start(&verifier, b"n,,n=,r=abc").unwrap();
            let first = String::from_utf8(first).unwrap();
            first.split_once(",s=").unwrap().1.to_string()
        };
        assert_eq!(server_first("mallory"), server_first("mallory"));
        assert_ne!(server_first("mallory"), server_first("eve"));
        let error = login(
            &users.verifier("mallory"),
            "pw",
            ChannelBinding::unsupported(),
        );
        assert!(matches!(error, Err(AuthError::Failed)));
    }

    fn policy(
        listen: &str,
        auth: Option<&str>,
        with_user: bool,
    ) -> Result<AuthPolicy, PolicyError> {
        let config = ServerConfig {
            listen: listen.to_string(),
            auth: auth.map(str::to_string),
            ..ServerConfig::default()
        };
        let configured: &[(&str, &str)] = if with_user {
            &[("alice", POSTGRES_PW)]
        } else {
            &[]
        };
        AuthPolicy::decide(&config, users(configured, None)?)
    }

    #[test]
    fn trust_only_on_loopback() {
        for listen in [
            "127.0.0.1:5433",
            "127.8.9.1:1",
            "[::1]:5433",
            "localhost:5433",
            "::1",
        ] {
            assert!(
                matches!(policy(listen, None, false), Ok(AuthPolicy::Trust)),
                "{listen}"
            );
            assert!(matches!(
                policy(listen, Some("trust"), false),
                Ok(AuthPolicy::Trust)
            ));
        }
        for listen in [
            "0.0.0.0:5433",
            "[::]:5433",
            "10.1.2.3:5433",
            "db.example.com:5433",
        ] {
            let error = policy(listen, Some("trust"), true).unwrap_err().to_string();
            assert!(error.contains("only on a loopback"), "{listen}: {error}");
            assert!(matches!(
                policy(listen, None, true),
                Ok(AuthPolicy::Scram(_))
            ));
        }
    }

    #[test]
    fn scram_needs_users() {
        assert!(matches!(
            policy("127.0.0.1:5433", Some("scram-sha-256"), true),
            Ok(AuthPolicy::Scram(_))
        ));
        for (listen, auth) in [
            ("0.0.0.0:5433", None),
            ("127.0.0.1:5433", Some("scram-sha-256")),
        ] {
            let error = policy(listen, auth, false).unwrap_err().to_string();
            assert!(error.contains("no users are configured"), "{error}");
        }
        let error = policy("127.0.0.1:5433", Some("md5"), true)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("expected \"trust\" or \"scram-sha-256\""),
            "{error}"
        );
    }
}
