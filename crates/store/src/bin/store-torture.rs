//! Child process of the contract suite's SIGKILL durability test: opens the SQLite store at
//! the path given as the only argument and commits in a loop, printing `ACK <generation>`
//! after each commit returns. The parent kills it with SIGKILL at varying points.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: store-torture PATH-TO-SQLITE-FILE");
        return ExitCode::from(2);
    };
    let store = match store::SqliteStore::open(&path) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("store-torture: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    match store::contract::torture_loop(&store, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("store-torture: {error}");
            ExitCode::FAILURE
        }
    }
}
