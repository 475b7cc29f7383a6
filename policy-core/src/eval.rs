//! Evaluation: route to the app, run its policies in order, first match decides.
//!
//! Rules are evaluated in three-valued logic. With a signed-in user every rule is true or
//! false. Without one, identity rules are *unknown*: an `allow`/`deny` policy whose value is
//! not plainly false could match after sign-in, so the answer is `login_required`; one that is
//! false on non-identity grounds alone is skipped.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::duration::SessionDuration;
use crate::engine::Engine;
use crate::error::EvalError;
use crate::hierarchy::Closure;
use crate::ix::{GroupIx, IdpIx, ListIx};
use crate::model::{Action, App, ListItems, Policy, Rule, Rules};
use crate::path::PathRefusal;
use crate::prepared::PreparedIdentity;
use crate::request::{Identity, Request};
use crate::verdict::{DecidingPolicy, Decision, Outcome};

/// Three-valued truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tri {
    False,
    Unknown,
    True,
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
    fn not(self) -> Tri {
        match self {
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
            Tri::True => Tri::False,
        }
    }
}

/// Receives the steps of an evaluation; [`NoTrace`] compiles them away.
pub(crate) trait Trace<'e> {
    const ON: bool;
    fn step(&mut self, step: Step<'e>);
}

/// Collects nothing.
pub(crate) struct NoTrace;

impl Trace<'_> for NoTrace {
    const ON: bool = false;
    fn step(&mut self, _step: Step<'_>) {}
}

/// One step of an evaluation, kept as data and put into words only when read
/// ([`Explanation::lines`]).
#[derive(Clone, Debug)]
pub(crate) enum Step<'e> {
    NoApp,
    PathRefused(PathRefusal),
    Covered(&'e App),
    Policy {
        policy: &'e Policy,
        precedence: u32,
        value: Tri,
        reason: Reason,
    },
    IdpNotAllowed,
    CouldMatchAfterSignIn(&'e Policy),
    Session(&'e SessionDuration),
    DefaultDeny {
        signed_in: bool,
    },
}

/// The steps of one evaluation ([`Engine::decide_explained`]): recorded while deciding, put
/// into words only when asked, so a gateway explains its refusals without deciding twice.
pub struct Explanation<'e> {
    engine: &'e Engine,
    steps: Vec<Step<'e>>,
}

impl<'e> Trace<'e> for Explanation<'e> {
    const ON: bool = true;
    fn step(&mut self, step: Step<'e>) {
        self.steps.push(step);
    }
}

impl core::fmt::Debug for Explanation<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Explanation")
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl<'e> Explanation<'e> {
    pub(crate) fn new(engine: &'e Engine) -> Self {
        Explanation {
            engine,
            steps: Vec::new(),
        }
    }

    /// The steps in words, one line each; `request` is the request that was decided.
    #[must_use]
    pub fn lines(&self, request: &Request) -> Vec<String> {
        let target = &request.target;
        self.steps
            .iter()
            .map(|step| match step {
                Step::NoApp => format!("no app covers `{target}`"),
                Step::PathRefused(refusal) => format!("path of `{target}` refused: {refusal}"),
                Step::Covered(app) => format!(
                    "app `{}` ({}) covers `{target}` via `{}`",
                    app.name, app.id, app.domain
                ),
                Step::Policy {
                    policy,
                    precedence,
                    value,
                    reason,
                } => self.engine.describe(policy, *precedence, *value, reason),
                Step::IdpNotAllowed => {
                    "the user's identity provider is not in the app's `allowed_idps`".into()
                }
                Step::CouldMatchAfterSignIn(policy) => format!(
                    "no one is signed in, and policy `{}` could match after sign-in",
                    policy.name
                ),
                Step::Session(session) => format!("session duration `{session}`"),
                Step::DefaultDeny { signed_in: true } => {
                    "no policy matched: denied by default".into()
                }
                Step::DefaultDeny { signed_in: false } => {
                    "no policy can match, even after sign-in: denied by default".into()
                }
            })
            .collect()
    }
}

macro_rules! step {
    ($t:expr, $step:expr) => {
        if T::ON {
            $t.step($step);
        }
    };
}

/// Why a policy's rules came out the way they did.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reason {
    Included(usize),
    NoInclude,
    RequireFailed(usize),
    Excluded(usize),
    /// Undecided without an identity.
    Unknown,
}

pub(crate) fn run<'e, T: Trace<'e>>(
    engine: &'e Engine,
    request: &Request,
    trace: &mut T,
) -> Result<Decision<'e>, EvalError> {
    let who = request.identity.as_ref().map(|identity| Who {
        identity,
        idp: engine.identity_idp(identity),
        closure: None,
    });
    decide(engine, request, who, trace)
}

/// [`run`] for a prepared identity, without a trace. One prepared by another engine has its
/// closure recomputed, as [`run`] would.
pub(crate) fn run_as<'e>(
    engine: &'e Engine,
    request: &Request,
    prepared: &PreparedIdentity,
) -> Result<Decision<'e>, EvalError> {
    let who = if prepared.is_for(engine) {
        Who {
            identity: &prepared.identity,
            idp: prepared.idp,
            closure: prepared.closure.as_ref().map(Cow::Borrowed),
        }
    } else {
        Who {
            identity: &prepared.identity,
            idp: engine.identity_idp(&prepared.identity),
            closure: None,
        }
    };
    decide(engine, request, Some(who), &mut NoTrace)
}

/// The signed-in user of an evaluation: their identity, its identity provider, and the
/// closure of their groups when already known.
struct Who<'r> {
    identity: &'r Identity,
    idp: Option<IdpIx>,
    closure: Option<Cow<'r, Closure>>,
}

fn decide<'e, 'r, T: Trace<'e>>(
    engine: &'e Engine,
    request: &'r Request,
    who: Option<Who<'r>>,
    trace: &mut T,
) -> Result<Decision<'e>, EvalError> {
    let app = match engine.app_for(&request.target) {
        Ok(Some(app)) => app,
        Ok(None) => {
            step!(trace, Step::NoApp);
            return Ok(Decision {
                outcome: Outcome::NoApp,
                app: None,
                policy: None,
                session: None,
            });
        }
        Err(refusal) => {
            step!(trace, Step::PathRefused(refusal));
            return Ok(Decision {
                outcome: Outcome::InvalidPath,
                app: None,
                policy: None,
                session: None,
            });
        }
    };
    step!(trace, Step::Covered(app));
    let mut cx = Context::new(engine, request, who);
    let decided = |outcome: Outcome, policy: Option<DecidingPolicy<'e>>| Decision {
        outcome,
        app: Some(app),
        policy,
        session: None,
    };

    let (first, second) = app.order.split_at(app.first_pass.min(app.order.len()));
    for slot in first {
        let policy = engine.policy(slot.policy)?;
        let (value, reason) = cx.rules(&policy.rules)?;
        step!(
            trace,
            Step::Policy {
                policy,
                precedence: slot.precedence,
                value,
                reason,
            }
        );
        if value == Tri::True {
            let outcome = if policy.action == Action::Bypass {
                Outcome::Bypass
            } else {
                Outcome::ServiceAuth
            };
            return Ok(decided(outcome, Some(deciding(policy, slot.precedence))));
        }
    }

    let signed_in = cx.identity.is_some();
    if signed_in && !cx.idp_allowed(app) {
        step!(trace, Step::IdpNotAllowed);
        return Ok(decided(Outcome::DefaultDeny, None));
    }
    for slot in second {
        let policy = engine.policy(slot.policy)?;
        let (value, reason) = cx.rules(&policy.rules)?;
        step!(
            trace,
            Step::Policy {
                policy,
                precedence: slot.precedence,
                value,
                reason,
            }
        );
        match (value, signed_in) {
            (Tri::False, _) => continue,
            (_, false) => {
                step!(trace, Step::CouldMatchAfterSignIn(policy));
                return Ok(decided(
                    Outcome::LoginRequired,
                    Some(deciding(policy, slot.precedence)),
                ));
            }
            (_, true) => {
                let policy_ref = Some(deciding(policy, slot.precedence));
                if policy.action == Action::Deny {
                    return Ok(decided(Outcome::Block, policy_ref));
                }
                let session = policy
                    .session
                    .as_ref()
                    .or(app.session.as_ref())
                    .unwrap_or(&engine.default_session);
                step!(trace, Step::Session(session));
                return Ok(Decision {
                    outcome: Outcome::Allow,
                    app: Some(app),
                    policy: policy_ref,
                    session: Some(session),
                });
            }
        }
    }
    step!(trace, Step::DefaultDeny { signed_in });
    Ok(decided(Outcome::DefaultDeny, None))
}

fn deciding(policy: &Policy, precedence: u32) -> DecidingPolicy<'_> {
    DecidingPolicy {
        id: policy.id.as_deref(),
        name: &policy.name,
        precedence,
        action: policy.action,
    }
}

/// Per-evaluation state: the resolved identity provider, the lazily computed group closure and
/// the memo of Access group results.
struct Context<'e, 'r> {
    engine: &'e Engine,
    request: &'r Request,
    identity: Option<&'r Identity>,
    idp: Option<IdpIx>,
    closure: Option<Cow<'r, Closure>>,
    group_memo: Vec<Option<Tri>>,
}

impl<'e, 'r> Context<'e, 'r> {
    fn new(engine: &'e Engine, request: &'r Request, who: Option<Who<'r>>) -> Self {
        let (identity, idp, closure) = match who {
            Some(who) => (Some(who.identity), who.idp, who.closure),
            None => (None, None, None),
        };
        Context {
            engine,
            request,
            identity,
            idp,
            closure,
            group_memo: Vec::new(),
        }
    }

    fn idp_allowed(&self, app: &App) -> bool {
        match &app.allowed_idps {
            Some(allowed) => self.idp.is_some_and(|i| allowed.contains(&i)),
            None => true,
        }
    }

    /// `any(include) ∧ all(require) ∧ ¬any(exclude)`, short-circuiting.
    fn rules(&mut self, rules: &Rules) -> Result<(Tri, Reason), EvalError> {
        let mut include = Tri::False;
        let mut included = 0;
        for (i, rule) in rules.include.iter().enumerate() {
            match self.rule(rule)? {
                Tri::True => {
                    include = Tri::True;
                    included = i;
                    break;
                }
                Tri::Unknown => include = Tri::Unknown,
                Tri::False => {}
            }
        }
        if include == Tri::False {
            return Ok((Tri::False, Reason::NoInclude));
        }
        let mut value = include;
        for (i, rule) in rules.require.iter().enumerate() {
            match self.rule(rule)? {
                Tri::False => return Ok((Tri::False, Reason::RequireFailed(i))),
                Tri::Unknown => value = Tri::Unknown,
                Tri::True => {}
            }
        }
        for (i, rule) in rules.exclude.iter().enumerate() {
            match self.rule(rule)?.not() {
                Tri::False => return Ok((Tri::False, Reason::Excluded(i))),
                Tri::Unknown => value = Tri::Unknown,
                Tri::True => {}
            }
        }
        let reason = if value == Tri::True {
            Reason::Included(included)
        } else {
            Reason::Unknown
        };
        Ok((value, reason))
    }

    fn identity(&self) -> Option<&'r Identity> {
        self.identity
    }

    fn rule(&mut self, rule: &Rule) -> Result<Tri, EvalError> {
        let request = self.request;
        Ok(match rule {
            Rule::Everyone => Tri::True,
            Rule::Ip(range) => Tri::from_bool(request.ip.is_some_and(|ip| range.contains(ip))),
            Rule::IpList(list) => {
                let ListItems::Ranges(ranges) = &self.engine.list(*list)?.items else {
                    return Err(EvalError::Inconsistent {
                        table: "IP list",
                        index: list.get(),
                    });
                };
                Tri::from_bool(
                    request
                        .ip
                        .is_some_and(|ip| ranges.iter().any(|r| r.contains(ip))),
                )
            }
            Rule::Geo(country) => Tri::from_bool(request.country == Some(*country)),
            Rule::ServiceToken(id) => Tri::from_bool(
                request
                    .service_token
                    .as_ref()
                    .is_some_and(|t| t.token_id == *id),
            ),
            Rule::AnyServiceToken => Tri::from_bool(request.service_token.is_some()),
            Rule::Certificate => Tri::from_bool(request.mtls.is_some()),
            Rule::CommonName(cn) => Tri::from_bool(
                request
                    .mtls
                    .as_ref()
                    .and_then(|m| m.common_name.as_ref())
                    .is_some_and(|c| c == cn),
            ),
            Rule::AccessGroup(g) => self.access_group(*g)?,
            identity_rule => match self.identity() {
                None => Tri::Unknown,
                Some(identity) => Tri::from_bool(self.identity_rule(identity, identity_rule)?),
            },
        })
    }

    fn identity_rule(&mut self, identity: &Identity, rule: &Rule) -> Result<bool, EvalError> {
        let email = identity.email.as_ref();
        Ok(match rule {
            Rule::Email(e) => email.is_some_and(|m| m.as_str() == &**e),
            Rule::EmailDomain(d) => email.is_some_and(|m| m.domain() == &**d),
            Rule::EmailList(list) => {
                let ListItems::Emails(emails) = &self.engine.list(*list)?.items else {
                    return Err(EvalError::Inconsistent {
                        table: "email list",
                        index: list.get(),
                    });
                };
                email.is_some_and(|m| emails.binary_search_by(|e| (**e).cmp(m.as_str())).is_ok())
            }
            Rule::LoginMethod(idp) => self.idp == Some(*idp),
            Rule::AuthMethod(m) => identity.amr.iter().any(|a| a == m),
            Rule::AuthContext { ac_id, idp } => {
                self.idp == Some(*idp) && identity.acrs.iter().any(|a| a == ac_id)
            }
            Rule::Oidc { claim, value, idp } => {
                self.idp == Some(*idp)
                    && identity
                        .claims
                        .iter()
                        .find(|(name, _)| name == claim)
                        .is_some_and(|(_, values)| values.iter().any(|v| v == value))
            }
            Rule::AzureGroup { group, idp } => {
                if self.idp != Some(*idp) {
                    false
                } else {
                    if self.closure.is_none() {
                        self.closure = Some(Cow::Owned(
                            self.engine
                                .hierarchy_for(self.idp)
                                .closure(&identity.groups)?,
                        ));
                    }
                    if group.get() >= self.engine.hierarchy.referenced().len() {
                        return Err(EvalError::Inconsistent {
                            table: "referenced group",
                            index: group.get(),
                        });
                    }
                    self.closure.as_ref().is_some_and(|c| {
                        u32::try_from(group.get()).is_ok_and(|i| c.contains_index(i))
                    })
                }
            }
            _ => false,
        })
    }

    fn access_group(&mut self, g: GroupIx) -> Result<Tri, EvalError> {
        if let Some(Some(value)) = self.group_memo.get(g.get()) {
            return Ok(*value);
        }
        let engine = self.engine;
        let group = engine.group(g)?;
        // Load-time checks bound the nesting depth and reject cycles, so this recursion ends.
        let (value, _) = self.rules(&group.rules)?;
        if self.group_memo.is_empty() {
            self.group_memo = vec![None; engine.groups.len()];
        }
        if let Some(slot) = self.group_memo.get_mut(g.get()) {
            *slot = Some(value);
        }
        Ok(value)
    }
}

impl Engine {
    /// A policy's step as shown in traces.
    fn describe(&self, policy: &Policy, precedence: u32, value: Tri, reason: &Reason) -> String {
        let head = format!(
            "policy `{}` ({}, precedence {precedence})",
            policy.name,
            policy.action.as_str()
        );
        let rule = |list: &[Rule], i: usize| {
            list.get(i)
                .map_or_else(String::new, |r| self.describe_rule(r))
        };
        match reason {
            Reason::Included(i) => {
                format!(
                    "{head}: matched by include {}",
                    rule(&policy.rules.include, *i)
                )
            }
            Reason::NoInclude => format!("{head}: no include rule matched"),
            Reason::RequireFailed(i) => {
                format!(
                    "{head}: require {} not met",
                    rule(&policy.rules.require, *i)
                )
            }
            Reason::Excluded(i) => {
                format!("{head}: excluded by {}", rule(&policy.rules.exclude, *i))
            }
            Reason::Unknown => {
                debug_assert!(value == Tri::Unknown);
                format!("{head}: depends on who signs in")
            }
        }
    }

    /// A rule as shown in traces.
    pub(crate) fn describe_rule(&self, rule: &Rule) -> String {
        let idp = |i: &IdpIx| self.idps.get(i.get()).map_or("?", |p| &*p.name);
        let list = |i: &ListIx| {
            self.lists
                .get(i.get())
                .map_or_else(|| "?".into(), |l| format!("{} ({})", l.id, l.name))
        };
        match rule {
            Rule::Everyone => "`everyone`".into(),
            Rule::Email(e) => format!("email `{e}`"),
            Rule::EmailDomain(d) => format!("email_domain `{d}`"),
            Rule::EmailList(l) => format!("email_list `{}`", list(l)),
            Rule::Ip(r) => format!("ip `{r}`"),
            Rule::IpList(l) => format!("ip_list `{}`", list(l)),
            Rule::Geo(c) => format!("geo `{c}`"),
            Rule::AzureGroup { group, idp: i } => {
                let id = self.hierarchy.referenced().get(group.get());
                let g = id.map_or_else(|| "?".into(), |g| self.describe_group(*g));
                format!("azureAD {g} of `{}`", idp(i))
            }
            Rule::AccessGroup(g) => {
                let group = self.groups.get(g.get());
                format!("access group `{}`", group.map_or("?", |g| &*g.name))
            }
            Rule::LoginMethod(i) => format!("login_method `{}`", idp(i)),
            Rule::AuthMethod(m) => format!("auth_method `{m}`"),
            Rule::AuthContext { ac_id, .. } => format!("auth_context `{ac_id}`"),
            Rule::Oidc { claim, value, .. } => format!("oidc claim `{claim}` = `{value}`"),
            Rule::ServiceToken(t) => format!("service_token `{t}`"),
            Rule::AnyServiceToken => "`any_valid_service_token`".into(),
            Rule::CommonName(cn) => format!("common_name `{cn}`"),
            Rule::Certificate => "`certificate`".into(),
        }
    }
}
