//! Child process of the contract suite's SIGKILL durability test: opens a store and commits
//! in a loop, printing `ACK <generation>` after each commit returns. The parent kills it
//! with SIGKILL at varying points.
//!
//! `store-torture PATH` opens the SQLite file at PATH; `store-torture --etcd ENDPOINTS
//! PREFIX` the etcd store at ENDPOINTS (comma-separated) under PREFIX.

use std::process::ExitCode;
use std::sync::Arc;

fn open(args: &[std::ffi::OsString]) -> Result<Arc<dyn store::Store>, String> {
    match args {
        [path] => Ok(Arc::new(
            store::SqliteStore::open(path).map_err(|error| error.to_string())?,
        )),
        [flag, endpoints, prefix] if flag == "--etcd" => {
            let endpoints = endpoints.to_string_lossy();
            let mut config =
                store::EtcdConfig::new(endpoints.split(',').map(str::to_string).collect());
            config.prefix = prefix.to_string_lossy().into_owned();
            Ok(Arc::new(
                store::EtcdStore::open(&config).map_err(|error| error.to_string())?,
            ))
        }
        _ => Err("usage: store-torture PATH-TO-SQLITE-FILE | --etcd ENDPOINTS PREFIX".to_string()),
    }
}

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let store = match open(&args) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("store-torture: {error}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    match store::contract::torture_loop(store.as_ref(), &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("store-torture: {error}");
            ExitCode::FAILURE
        }
    }
}
