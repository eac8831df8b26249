//! Nothing half-alive: a node whose task panics exits, non-zero, so the service manager
//! restarts it whole from the store (every acknowledged version is there), instead of
//! serving an old version forever while the rest of the pipeline goes on without it.
//!
//! Tokio catches a task's panic and leaves the other tasks running; the hook installed here
//! runs before that, wherever the panic happens (async task, blocking pool, encoder thread),
//! logs it and ends the process. Logging itself cannot panic (`LogSink` in `main.rs`).

/// Exit status of a node that ended because one of its tasks panicked (EX_SOFTWARE).
pub const EXIT_TASK_PANICKED: i32 = 70;

/// Makes every panic in this process end it with [`EXIT_TASK_PANICKED`] after logging it.
pub fn exit_on_panic(node: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        // A library's panic on one bad input, turned into that input's error.
        if model::contained::active() {
            return;
        }
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(
            node,
            thread,
            panic = %info,
            %backtrace,
            "a task of the node panicked: exiting with status {EXIT_TASK_PANICKED} so the service manager restarts the node whole (the store keeps every acknowledged version)"
        );
        std::process::exit(EXIT_TASK_PANICKED);
    }));
}

/// A task the node cannot serve correctly without ended on its own (not by shutdown, which
/// aborts it): logged, and the process exits with [`EXIT_TASK_PANICKED`] like a panic.
pub fn task_ended(task: &'static str) -> ! {
    tracing::error!(
        task,
        "a task of the node ended unexpectedly: exiting with status {EXIT_TASK_PANICKED} so the service manager restarts the node whole"
    );
    std::process::exit(EXIT_TASK_PANICKED);
}
