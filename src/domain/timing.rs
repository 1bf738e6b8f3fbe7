//! Where a run spends its time: named wall-clock phases, printed by `--stats`.
//!
//! Phases may overlap (the credential report is awaited while `GetAccountAuthorizationDetails`
//! pages arrive), so each keeps its start as well as its length.

use std::time::{Duration, Instant};

/// One measured phase of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// What was done, e.g. `credential_report.wait` or `gaad.page.2`.
    pub name: String,
    /// When it began.
    pub started: Instant,
    /// How long it took.
    pub elapsed: Duration,
}

impl Phase {
    /// A phase that began at `started` and ends now.
    #[must_use]
    pub fn since(name: impl Into<String>, started: Instant) -> Phase {
        Phase { name: name.into(), started, elapsed: started.elapsed() }
    }

    /// Milliseconds from `origin` to this phase's start (0 if it began before `origin`).
    #[must_use]
    pub fn start_ms(&self, origin: Instant) -> f64 {
        self.started.saturating_duration_since(origin).as_secs_f64() * 1000.0
    }

    /// Its length in milliseconds.
    #[must_use]
    pub fn ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_is_placed_after_its_origin_and_never_before() {
        let origin = Instant::now();
        let later = origin + Duration::from_millis(250);
        let phase = Phase { name: "gaad.page.1".into(), started: later, elapsed: Duration::from_millis(40) };
        assert!((phase.start_ms(origin) - 250.0).abs() < 1e-6);
        assert!((phase.ms() - 40.0).abs() < 1e-6);
        assert!(phase.start_ms(later + Duration::from_secs(1)).abs() < 1e-9, "an origin after the start clamps to 0");
    }
}
