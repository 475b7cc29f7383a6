//! `signin-hop-bench`: what signing in through the team domain (`TEAM_DOMAIN_SIGN_IN=true`)
//! adds to a sign-in, against each host signing in for itself, under workerd (`wrangler dev
//! --local`) on 127.0.0.1, with three host names on one worker (`edge_access_tests::hosts`).
//!
//! Each round is a new browser (a cookie jar); only the gateway's answers are timed, never
//! the emulator's sign-in page, so the rows compare what the gateway does:
//!
//! - **direct**: the app host's protected page → its login → (Entra) → its callback → the page;
//! - **team domain, first host**: the app host's page → its login → the team domain's login →
//!   (Entra) → the team domain's callback → the app host's `authorized` → the page;
//! - **team domain, second host**: with the team session of that round, another app host's
//!   page → its login → the team domain's login (its session reused, no Entra) → `authorized`
//!   → the page.
//!
//! ```text
//! signin-hop-bench [--rounds N] [--write FILE] [--command TEXT] [--quick]
//! ```
//!
//! `--write FILE` puts the results in FILE's "## Sign-in through the team domain under workerd"
//! section. Needs wrangler (`cargo xtask setup`) and the worker's release build (`cargo xtask
//! build-worker`).

#![expect(
    clippy::print_stderr,
    clippy::panic,
    reason = "a command-line tool reports progress on stderr; a failed step ends the run"
)]

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bench_report::{
    commit_and_changes, count_f64, parse_args, positive, quantile, repository_root, section_main,
    sorted_ms, Common, Environment,
};
use edge_access_tests::hosts::{Agent, Hosts, PREFIX};
use edge_access_tests::stack::Stack;

/// The section this benchmark owns in BENCHMARKS.md.
const HEADING: &str = "## Sign-in through the team domain under workerd";

const USAGE: &str =
    "usage: signin-hop-bench [--rounds N] [--write FILE] [--command TEXT] [--quick]";

#[derive(Debug, Clone)]
struct Options {
    rounds: usize,
    common: Common,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut rounds = 40;
    let common = parse_args(
        args,
        USAGE,
        "cargo run --release -p edge-access-signin-bench -- --write BENCHMARKS.md",
        |arg, rest| {
            match arg {
                "--rounds" => rounds = positive(rest.next(), arg, USAGE)?,
                "--quick" => rounds = 5,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(Options { rounds, common })
}

fn main() -> ExitCode {
    section_main("signin-hop-bench", HEADING, |args| {
        let options = parse(args)?;
        let report = run(&options)?;
        Ok((report.markdown(), options.common.write.clone()))
    })
}

/// One kind of sign-in: the gateway's time of each round, and its answers per round.
#[derive(Debug)]
struct Series {
    name: &'static str,
    gateway: Vec<Duration>,
    answers: usize,
}

#[derive(Debug)]
struct Report {
    options: Options,
    environment: Environment,
    series: Vec<Series>,
}

/// A round's clock: the gateway's answers only.
struct Clock<'a, 'h> {
    agent: &'a mut Agent<'h>,
    spent: Duration,
    answers: usize,
}

impl<'a, 'h> Clock<'a, 'h> {
    fn new(agent: &'a mut Agent<'h>) -> Self {
        Clock {
            agent,
            spent: Duration::ZERO,
            answers: 0,
        }
    }

    /// `GET url`, timed, expecting a redirect: where it goes.
    fn redirect(&mut self, url: &str) -> String {
        let started = Instant::now();
        let location = self.agent.redirected(url);
        self.spent += started.elapsed();
        self.answers += 1;
        location
    }

    /// `GET url`, timed, expecting the origin's page.
    fn page(&mut self, url: &str) {
        let started = Instant::now();
        let answer = self.agent.get(url);
        self.spent += started.elapsed();
        self.answers += 1;
        assert_eq!(answer.status, 200, "{url}: {answer:?}");
    }

    /// The emulator's sign-in as `user` (not timed): the callback URL.
    fn entra(&self, authorize: &str, user: &str) -> String {
        self.agent
            .hosts
            .stack
            .emulator()
            .sign_in(authorize, user)
            .unwrap_or_else(|e| panic!("the emulator's sign-in: {e}"))
    }
}

fn run(options: &Options) -> Result<Report, String> {
    Stack::check_prerequisites().map_err(|e| e.to_string())?;
    let root = repository_root().map_err(|e| e.to_string())?;
    let revision = match commit_and_changes(&root, &["worker", "policy-core"]) {
        Some((commit, files)) if files.is_empty() => format!("commit {commit}"),
        Some((commit, files)) => format!("commit {commit} with changes to {}", files.join(", ")),
        None => "an unknown tree".into(),
    };
    let mut environment = Environment::observe(&root, &options.common.command, revision);
    eprintln!("each host signing in for itself: starting a stack");
    let direct_hosts = Hosts::start("signin-bench-direct", false)?;
    let mut direct = Series {
        name: "direct: the app host signs in",
        gateway: Vec::new(),
        answers: 0,
    };
    eprintln!("the team domain as the hub: starting a stack");
    let hub_hosts = Hosts::start("signin-bench-hub", true)?;
    let mut first = Series {
        name: "team domain: first host (Entra, handoff)",
        gateway: Vec::new(),
        answers: 0,
    };
    let mut second = Series {
        name: "team domain: second host (team session reused)",
        gateway: Vec::new(),
        answers: 0,
    };
    // One warm-up round each, not counted.
    for round in 0..=options.rounds {
        let (spent, answers) = direct_round(&direct_hosts);
        let ((first_spent, first_answers), (second_spent, second_answers)) = hub_round(&hub_hosts);
        if round > 0 {
            direct.gateway.push(spent);
            direct.answers = answers;
            first.gateway.push(first_spent);
            first.answers = first_answers;
            second.gateway.push(second_spent);
            second.answers = second_answers;
        }
    }
    environment.finish();
    Ok(Report {
        options: options.clone(),
        environment,
        series: vec![direct, first, second],
    })
}

/// A sign-in on `app1` by itself: the gateway's time and answers.
fn direct_round(hosts: &Hosts) -> (Duration, usize) {
    let mut agent = Agent::new(hosts);
    let mut clock = Clock::new(&mut agent);
    let page = format!("http://{}/", hosts.app1());
    let login = clock.redirect(&page);
    let authorize = clock.redirect(&login);
    let callback = clock.entra(&authorize, "dora");
    let back = clock.redirect(&callback);
    assert_eq!(back, page);
    clock.page(&page);
    (clock.spent, clock.answers)
}

/// A sign-in on `app1` through the team domain, then `app2` with the team session.
fn hub_round(hosts: &Hosts) -> ((Duration, usize), (Duration, usize)) {
    let mut agent = Agent::new(hosts);
    let mut clock = Clock::new(&mut agent);
    let page = format!("http://{}/", hosts.app1());
    let login = clock.redirect(&page);
    let team = clock.redirect(&login);
    let authorize = clock.redirect(&team);
    let callback = clock.entra(&authorize, "dora");
    let handoff = clock.redirect(&callback);
    assert!(
        handoff.contains(&format!("{PREFIX}/authorized?")),
        "{handoff}"
    );
    let back = clock.redirect(&handoff);
    assert_eq!(back, page);
    clock.page(&page);
    let first = (clock.spent, clock.answers);

    clock.spent = Duration::ZERO;
    clock.answers = 0;
    let page = format!("http://{}/", hosts.app2());
    let login = clock.redirect(&page);
    let team = clock.redirect(&login);
    let handoff = clock.redirect(&team);
    assert!(
        handoff.contains(&format!("{PREFIX}/authorized?")),
        "{handoff}"
    );
    let back = clock.redirect(&handoff);
    assert_eq!(back, page);
    clock.page(&page);
    (first, (clock.spent, clock.answers))
}

impl Report {
    fn markdown(&self) -> String {
        let e = &self.environment;
        let mut out = String::new();
        let _ = writeln!(out, "{HEADING}\n");
        let _ = writeln!(
            out,
            "`{}` on {} ({} cores; load {} → {}), wrangler {}, workerd {}; {}; {}. {} rounds, each \
             a new browser, after one warm-up round. Only the gateway's answers are timed (sum \
             over the round's requests to the worker, on 127.0.0.1, one connection per \
             request); the emulator's sign-in page is not.\n",
            e.command,
            e.cpu,
            e.cores,
            e.load_start,
            e.load_end,
            e.wrangler,
            e.workerd,
            e.date,
            e.revision,
            self.options.rounds
        );
        out.push_str(
            "| sign-in | gateway answers | p50 ms | p95 ms | mean ms |\n|---|---:|---:|---:|---:|\n",
        );
        for series in &self.series {
            let sorted = sorted_ms(series.gateway.iter().copied());
            let mean = sorted.iter().sum::<f64>() / count_f64(sorted.len().max(1));
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {mean:.1} |",
                series.name,
                series.answers,
                quantile(&sorted, 0.5),
                quantile(&sorted, 0.95)
            );
        }
        if let [direct, first, ..] = self.series.as_slice() {
            let p50 = |s: &Series| quantile(&sorted_ms(s.gateway.iter().copied()), 0.5);
            let _ = writeln!(
                out,
                "\nThe team domain's hop adds {:.1} ms (p50) and {} answers to a first sign-in; \
                 each further host then signs in without Entra.",
                p50(first) - p50(direct),
                first.answers.saturating_sub(direct.answers)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse() {
        assert_eq!(parse(&["--quick".into()]).unwrap().rounds, 5);
        assert_eq!(parse(&["--rounds".into(), "7".into()]).unwrap().rounds, 7);
        assert!(parse(&["--rounds".into(), "0".into()]).is_err());
        assert!(parse(&["--bogus".into()]).is_err());
    }
}
