//! Policies, reusable (`policies[]`) and inline: decision, rules, session duration.

use alloc::format;
use alloc::string::ToString;

use crate::duration::SessionDuration;
use crate::json::{boxed, Json, Obj, Path};
use crate::model::{Action, Policy, Rule, Rules, Warning};

use super::{Loader, READ_ONLY};

/// Fields of an inline policy; a reusable policy has the same without `precedence`.
pub(super) const INLINE_POLICY_FIELDS: &[&str] = &[
    "precedence",
    "id",
    "name",
    "decision",
    "include",
    "require",
    "exclude",
    "session_duration",
    "approval_required",
    "approval_groups",
    "purpose_justification_required",
    "purpose_justification_prompt",
    "isolation_required",
    "mfa_config",
];

impl<'j> Loader<'j, '_> {
    /// Parses a policy (reusable, or inline in an app when `inline`); returns it with its
    /// explicit precedence.
    pub(super) fn policy(
        &mut self,
        v: &'j Json<'j>,
        path: &Path<'_>,
        inline: bool,
    ) -> Option<(Policy, Option<u32>)> {
        let known = if inline {
            INLINE_POLICY_FIELDS
        } else {
            INLINE_POLICY_FIELDS.get(1..).unwrap_or(&[])
        };
        let o = self.object(v, path, known, READ_ONLY)?;
        let id = match o.get("id") {
            Some(v) => Some(self.p.nonempty(v, &path.key("id"))?),
            None if !inline => {
                self.p.add(path, "missing field `id`");
                None
            }
            None => None,
        };
        let name = o
            .required("name", path, &mut self.p)
            .and_then(|v| self.p.nonempty(v, &path.key("name")));
        let action = o.required("decision", path, &mut self.p).and_then(|v| {
            let at = path.key("decision");
            match self.p.string(v, &at)? {
                "allow" => Some(Action::Allow),
                "deny" => Some(Action::Deny),
                "bypass" => Some(Action::Bypass),
                "non_identity" => Some(Action::NonIdentity),
                other => {
                    self.p.add(
                        &at,
                        format!("unknown decision `{other}` (allow, deny, bypass, non_identity)"),
                    );
                    None
                }
            }
        });
        for key in [
            "approval_required",
            "purpose_justification_required",
            "isolation_required",
        ] {
            if let Some(v) = o.get(key) {
                if self.p.boolean(v, &path.key(key)) == Some(true) {
                    self.p.add(
                        &path.key(key),
                        format!("`{key}: true` is not supported by edge-access"),
                    );
                }
            }
        }
        if let Some(v) = o.get("mfa_config") {
            let at = path.key("mfa_config");
            let disabled = match v {
                Json::Object(entries) => {
                    Obj { entries }.get("mfa_disabled") == Some(&Json::Bool(true))
                }
                _ => false,
            };
            if !disabled {
                self.p.add(
                    &at,
                    "`mfa_config` (independent MFA) is not supported by edge-access; use `mfa_disabled: true` or an `auth_method` rule",
                );
            }
        }
        let session = o
            .get("session_duration")
            .and_then(|v| self.duration(v, &path.key("session_duration")));
        let precedence = if inline {
            o.get("precedence")
                .and_then(|v| self.p.integer(v, &path.key("precedence")))
        } else {
            None
        };
        let (rules, _) = self.rules(&o, path);
        let (rules, action) = (rules?, action?);
        self.check_decision(action, &rules, &o, path);
        if action == Action::Allow && rules.require.is_empty() {
            self.warn_risky_allow(&rules, path);
        }
        Some((
            Policy {
                id: id.map(boxed),
                name: boxed(name?),
                action,
                rules,
                session,
            },
            precedence,
        ))
    }

    pub(super) fn duration(&mut self, v: &Json<'_>, path: &Path<'_>) -> Option<SessionDuration> {
        let s = self.p.string(v, path)?;
        SessionDuration::parse(s)
            .map_err(|e| self.p.add(path, format!("{e}: `{s}`")))
            .ok()
    }

    pub(super) fn warn_risky_allow(&mut self, rules: &Rules, path: &Path<'_>) {
        if let Some(i) = rules.include.iter().position(|r| *r == Rule::Everyone) {
            self.warnings.push(Warning {
                path: path.key("include").index(i).to_string(),
                message: "an `allow` policy that includes `everyone` lets in anyone who can sign in with any configured identity provider".into(),
            });
        } else if rules
            .include
            .iter()
            .all(|r| matches!(r, Rule::LoginMethod(_)))
        {
            self.warnings.push(Warning {
                path: path.key("include").to_string(),
                message: "an `allow` policy that includes only login methods lets in anyone who can sign in with that identity provider".into(),
            });
        }
    }

    /// Identity selectors cannot decide `bypass`/`non_identity`; service-token selectors need
    /// `non_identity` (or `bypass`).
    pub(super) fn check_decision(
        &mut self,
        action: Action,
        _rules: &Rules,
        o: &Obj<'j>,
        path: &Path<'_>,
    ) {
        for key in ["include", "require", "exclude"] {
            let Some(Json::Array(items)) = o.get(key) else {
                continue;
            };
            let at = path.key(key);
            for (i, item) in items.iter().enumerate() {
                let needs = self.rule_needs(item);
                let rp = at.index(i);
                match (action.is_first_pass(), needs.identity, needs.service_token) {
                    (true, Some(selector), _) => self.p.add(
                        &rp,
                        format!(
                            "identity selector `{selector}` cannot be used in a `{}` policy",
                            action.as_str()
                        ),
                    ),
                    (false, _, Some(selector)) => self.p.add(
                        &rp,
                        format!(
                            "`{selector}` needs decision `non_identity` (or `bypass`), not `{}`",
                            action.as_str()
                        ),
                    ),
                    _ => {}
                }
            }
        }
    }
}

/// The precedence of an inline policy whose body did not load (its problems are reported).
pub(super) fn inline_precedence(item: &Json<'_>) -> Option<u32> {
    let Json::Object(entries) = item else {
        return None;
    };
    let n = (Obj { entries }).get("precedence")?;
    let n = match n {
        Json::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok())?,
        _ => return None,
    };
    Some(n)
}

pub(super) fn placeholder_policy() -> Policy {
    Policy {
        id: None,
        name: boxed(""),
        action: Action::Deny,
        rules: Rules::default(),
        session: None,
    }
}
