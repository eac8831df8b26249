//! Serves the test zone on 127.0.0.1:PORT (default 5398) to compare with NSD by hand:
//! `cargo run -p server --example serve_example_zone -- 5398` then `dig @127.0.0.1 -p 5398`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use model::Generation;
use server::{Catalog, ServerConfig, ZoneSnapshot};

#[tokio::main]
async fn main() -> Result<(), server::ServerError> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(5398);
    let catalog = Arc::new(Catalog::new());
    catalog.replace_zone(Arc::new(ZoneSnapshot::build(
        &common::example_zone(1),
        Generation(1),
    )));
    let config = ServerConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    server::serve(config, catalog, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
