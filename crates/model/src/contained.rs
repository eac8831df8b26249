//! Panics of third-party code contained to the call that raised them.
//!
//! A node's panic hook ends the process (nothing half-alive), which is right for our own
//! bugs. A parser from a library that panics on one bad input (a zone file sent over the
//! API) must instead fail that input: [`contained`] runs such a call, the hook sees
//! [`active`] and stands aside, and the panic comes back as an error.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Runs `work`; a panic inside it is returned as its message instead of unwinding further.
pub fn contained<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    DEPTH.with(|depth| depth.set(depth.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(work));
    DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string())
    })
}

/// Whether this thread is inside [`contained`]: a panic hook should stand aside.
pub fn active() -> bool {
    DEPTH.with(Cell::get) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contained_panic_is_an_error_and_the_depth_is_restored() {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let error = contained(|| -> u8 { panic!("index out of bounds") }).unwrap_err();
        std::panic::set_hook(previous);
        assert_eq!(error, "index out of bounds");
        assert!(!active());
        assert_eq!(contained(|| 7), Ok(7));
    }
}
