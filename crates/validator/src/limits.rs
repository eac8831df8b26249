//! Every bound of the validator, with a default, a minimum and a maximum (clamped when the
//! configuration is loaded; see `model::limits` for the type).

use model::limits::{FractionLimit, Limit};

/// Time between two validation rounds (a store change also starts one).
pub const INTERVAL_MS: Limit = Limit {
    name: "validator.interval_ms",
    default: 1_000,
    min: 50,
    max: 60_000,
};

/// Protected names asked per round besides those that changed (in the store or in the
/// validator's health view since the last round): a rotating sample, so a round costs the
/// change plus a bound, and every name is asked within `endpoints / sample_names` rounds.
pub const SAMPLE_NAMES: Limit = Limit {
    name: "validator.sample_names",
    default: 64,
    min: 1,
    max: 100_000,
};

/// How long one DNS query may take before the server counts as silent.
pub const QUERY_TIMEOUT_MS: Limit = Limit {
    name: "validator.timeout_ms",
    default: 500,
    min: 10,
    max: 10_000,
};

/// How long a server may keep serving an older serial than the active generation's before
/// that is a violation (propagation is milliseconds; this is for a stuck server).
pub const SERIAL_LAG_MS: Limit = Limit {
    name: "validator.serial_lag_ms",
    default: 3_000,
    min: 100,
    max: 600_000,
};

/// How long a generation must pass every check while active to be the last known good.
pub const GOOD_AFTER_MS: Limit = Limit {
    name: "validator.good_after_ms",
    default: 3_000,
    min: 0,
    max: 86_400_000,
};

/// How long a backend's verdict (in the validator's own view) must hold before the served
/// answer is expected to agree with it: the planner needs time to react.
pub const HEALTH_GRACE_MS: Limit = Limit {
    name: "validator.health_grace_ms",
    default: 5_000,
    min: 0,
    max: 3_600_000,
};

/// Share of an endpoint's backends on which the answer may disagree with the validator's
/// health view before that is a finding.
pub const HEALTH_TOLERANCE: FractionLimit = FractionLimit {
    name: "validator.health_tolerance",
    default: 0.5,
    min: 0.0,
    max: 1.0,
};

/// Secondary servers checked besides our own.
pub const SERVERS: Limit = Limit {
    name: "validator.servers",
    default: 0,
    min: 0,
    max: 64,
};

/// When an expected generation is not served yet (within the lag bound), the round is
/// repeated after this long rather than a whole interval later.
pub const RECHECK_MS: Limit = Limit {
    name: "validator.recheck_ms",
    default: 20,
    min: 1,
    max: 1_000,
};

/// Last known good generations remembered per zone (rollback candidates, newest first).
pub const GOOD_REMEMBERED: Limit = Limit {
    name: "validator.good_remembered",
    default: 8,
    min: 1,
    max: 1_000,
};

/// Compare-and-swap attempts of one rollback (another writer can only be an operator while
/// the breaker is tripped).
pub const ROLLBACK_ATTEMPTS: Limit = Limit {
    name: "validator.rollback_attempts",
    default: 3,
    min: 1,
    max: 100,
};

/// Audit entries read per zone at start to replay the last known good.
pub const REPLAY_AUDIT_ENTRIES: Limit = Limit {
    name: "validator.replay_audit_entries",
    default: 1_000_000,
    min: 1_000,
    max: 100_000_000,
};

/// Distinct findings remembered per zone to audit each once while it persists.
pub const REPORTED_FINDINGS: Limit = Limit {
    name: "validator.reported_findings",
    default: 256,
    min: 1,
    max: 65_536,
};
