//! Named, timed steps: `==> name: detail (N.Ns)` after each, a summary at the end.

use std::time::{Duration, Instant};

use crate::error::XtaskError;

/// What a step did, for its `==>` line ("already installed", "15 tests", …).
pub type Outcome = String;

/// A sequence of steps that stops at the first failure.
#[derive(Debug)]
pub struct Steps {
    started: Instant,
    finished: Vec<(String, Duration)>,
}

/// The step that failed and how; returned by [`Steps::run`] so callers can add the summary.
#[derive(Debug)]
pub struct StepFailure {
    pub step: String,
    pub error: XtaskError,
}

impl Steps {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            finished: Vec::new(),
        }
    }

    /// Runs `body` as the step `name` and prints its line with the time it took.
    pub fn run(
        &mut self,
        name: &str,
        body: impl FnOnce() -> Result<Outcome, XtaskError>,
    ) -> Result<(), StepFailure> {
        let started = Instant::now();
        let result = body();
        let took = started.elapsed();
        match result {
            Ok(outcome) => {
                if outcome.is_empty() {
                    println!("==> {name} ({})", seconds(took));
                } else {
                    println!("==> {name}: {outcome} ({})", seconds(took));
                }
                self.finished.push((name.to_owned(), took));
                Ok(())
            }
            Err(error) => {
                println!("==> {name}: FAILED ({})", seconds(took));
                Err(StepFailure {
                    step: name.to_owned(),
                    error,
                })
            }
        }
    }

    /// Time since the first step started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The steps that passed, with their times.
    pub fn finished(&self) -> &[(String, Duration)] {
        &self.finished
    }
}

/// `12.3s`.
pub fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}
