//! TLS for the PostgreSQL listener.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::tokio_rustls::rustls;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The ALPN protocol PostgreSQL 17 clients require when they start TLS directly
/// (`sslnegotiation=direct`); pgwire checks it but keeps its constant private.
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate chain {path}: {source}")]
    Certificate { path: PathBuf, source: pem::Error },
    #[error("cannot read the TLS private key {path}: {source}")]
    Key { path: PathBuf, source: pem::Error },
    #[error("TLS certificate {cert} with key {key}: {source}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// A TLS acceptor for `pgwire::tokio::process_socket` from a PEM certificate chain (leaf
/// first) and a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certificate_error = |source| TlsError::Certificate {
        path: cert.to_path_buf(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(certificate_error)?;
    if chain.is_empty() {
        return Err(certificate_error(pem::Error::NoItemsFound));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        path: key.to_path_buf(),
        source,
    })?;
    // Both ring and aws-lc-rs are compiled into rustls here, so it will not pick a default
    // provider; aws-lc-rs is the one pgwire's server features use.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(chain, private_key)
        })
        .map_err(|source| TlsError::Config {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use pgwire::tokio::tokio_rustls::TlsConnector;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A self-signed certificate for `localhost` made by the openssl CLI, with a new key of
    /// `algorithm` (`rsa` or `ec`); returns (cert, key), the key in PKCS#8.
    fn self_signed(dir: &Path, algorithm: &str) -> (PathBuf, PathBuf) {
        let key_options: &[&str] = match algorithm {
            "ec" => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            _ => &["-newkey", "rsa:2048"],
        };
        openssl(
            &[
                &[
                    "req",
                    "-x509",
                    "-days",
                    "1",
                    "-nodes",
                    "-subj",
                    "/CN=localhost",
                ][..],
                key_options,
                &["-addext", "subjectAltName=DNS:localhost"],
                // webpki refuses a CA certificate as the server's own.
                &["-addext", "basicConstraints=critical,CA:FALSE"],
                &["-keyout", "key.pem", "-out", "cert.pem"],
            ]
            .concat(),
            dir,
        );
        (dir.join("cert.pem"), dir.join("key.pem"))
    }

    fn openssl(args: &[&str], dir: &Path) {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(output.status.success(), "{output:?}");
    }

    /// Completes a handshake with a client trusting `cert` and echoes one message.
    async fn handshake(acceptor: TlsAcceptor, cert: &Path) -> Option<Vec<u8>> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(socket).await.unwrap();
            let mut buf = [0; 4];
            tls.read_exact(&mut buf).await.unwrap();
            tls.write_all(&buf).await.unwrap();
            tls.shutdown().await.unwrap();
        });

        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(cert).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        let socket = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(name, socket)
            .await
            .unwrap();
        tls.write_all(b"ping").await.unwrap();
        let mut echoed = Vec::new();
        tls.read_to_end(&mut echoed).await.unwrap();
        assert_eq!(echoed, b"ping");
        server.await.unwrap();
        tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
    }

    #[tokio::test]
    async fn handshake_with_ec_and_rsa_keys() {
        for algorithm in ["ec", "rsa"] {
            let dir = tempfile::tempdir().unwrap();
            let (cert, key) = self_signed(dir.path(), algorithm);
            let alpn = handshake(acceptor(&cert, &key).unwrap(), &cert).await;
            assert_eq!(alpn.as_deref(), Some(ALPN_POSTGRESQL), "{algorithm}");
        }
    }

    #[tokio::test]
    async fn traditional_key_encodings_load() {
        // `openssl ec` writes SEC1 by default; `openssl rsa` needs -traditional for PKCS#1.
        let cases: [(&str, &[&str], &str); 2] = [
            ("rsa", &["rsa", "-traditional"], "RSA PRIVATE KEY"),
            ("ec", &["ec"], "EC PRIVATE KEY"),
        ];
        for (algorithm, convert, header) in cases {
            let dir = tempfile::tempdir().unwrap();
            let (cert, _) = self_signed(dir.path(), algorithm);
            openssl(
                &[convert, &["-in", "key.pem", "-out", "old.pem"]].concat(),
                dir.path(),
            );
            let old = dir.path().join("old.pem");
            let text = std::fs::read_to_string(&old).unwrap();
            assert!(
                text.starts_with(&format!("-----BEGIN {header}-----")),
                "{text}"
            );
            handshake(acceptor(&cert, &old).unwrap(), &cert).await;
        }
    }

    fn refusal(cert: &Path, key: &Path) -> String {
        match acceptor(cert, key) {
            Ok(_) => panic!("{} and {} were accepted", cert.display(), key.display()),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "rsa");
        let missing = dir.path().join("missing.pem");

        let error = refusal(&missing, &key);
        assert!(
            error.contains("certificate chain") && error.contains("missing.pem"),
            "{error}"
        );
        let error = refusal(&key, &key);
        assert!(
            error.contains("certificate chain") && error.contains("key.pem"),
            "{error}"
        );
        let error = refusal(&cert, &cert);
        assert!(
            error.contains("private key") && error.contains("cert.pem"),
            "{error}"
        );

        let other = tempfile::tempdir().unwrap();
        let (_, other_key) = self_signed(other.path(), "rsa");
        let error = refusal(&cert, &other_key);
        assert!(
            error.contains("cert.pem") && error.contains("with key"),
            "{error}"
        );
    }
}
