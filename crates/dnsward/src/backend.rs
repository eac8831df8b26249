//! `dnsward backend --listen ADDR`: a tiny HTTP backend for demos and tests. It answers
//! `GET /health` with 200 and `GET /` with its own address, so a new user can start and stop
//! backends and watch an endpoint follow their health.

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use clap::Args;

use crate::CliError;

#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Address to listen on, e.g. 127.0.0.11:8080 (any 127.0.0.0/8 address works on Linux).
    #[arg(long)]
    pub listen: SocketAddr,
}

pub fn run(args: BackendArgs) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|source| CliError::Io {
                path: format!("listen address {}", args.listen).into(),
                source,
            })?;
        let me = args.listen.to_string();
        let app = Router::new()
            .route("/health", get(|| async { "ok\n" }))
            .route("/", get(move || async move { format!("backend {me}\n") }));
        tracing::info!(listen = %args.listen, "backend up; stop it with Ctrl-C");
        axum::serve(listener, app)
            .with_graceful_shutdown(crate::serve::shutdown_signal())
            .await
            .map_err(|source| CliError::Io {
                path: format!("backend {}", args.listen).into(),
                source,
            })
    })
}
