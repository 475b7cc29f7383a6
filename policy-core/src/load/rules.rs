//! Rules (`include`, `require`, `exclude`) and their selectors, with what each needs.

use alloc::format;
use alloc::string::ToString;

use crate::ids::{parse_domain, Country, Email, GroupId};
use crate::ix::{GroupIx, IdpIx, ListIx, RefGroupIx};
use crate::json::{boxed, Json, Obj, Path};
use crate::model::{ListItems, Rule, Rules, Warning};
use crate::net::IpRange;

use super::groups::GroupEdge;
use super::{Loader, MINTED};

/// Access API selectors this engine does not implement.
pub(super) const UNSUPPORTED_SELECTORS: &[&str] = &[
    "device_posture",
    "external_evaluation",
    "gsuite",
    "okta",
    "saml",
    "github-organization",
    "user_risk_score",
    "linked_app_token",
    "cloudflare_account_member",
];

/// What a rule needs, for checking it against the decision of the policy using it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Needs {
    /// The first identity selector it uses (directly or through Access groups).
    pub(super) identity: Option<&'static str>,
    /// The first service-token selector it uses.
    pub(super) service_token: Option<&'static str>,
}

impl Needs {
    pub(super) fn identity(selector: &'static str) -> Needs {
        Needs {
            identity: Some(selector),
            service_token: None,
        }
    }
    pub(super) fn union(self, other: Needs) -> Needs {
        Needs {
            identity: self.identity.or(other.identity),
            service_token: self.service_token.or(other.service_token),
        }
    }
}

impl<'j> Loader<'j, '_> {
    /// What an already-validated rule needs (reads the selector key only).
    pub(super) fn rule_needs(&self, item: &Json<'_>) -> Needs {
        let Json::Object(entries) = item else {
            return Needs::default();
        };
        let [(key, inner)] = entries.as_slice() else {
            return Needs::default();
        };
        match key.as_ref() {
            "group" => {
                let id = match inner {
                    Json::Object(e) => Obj { entries: e }.get("id"),
                    _ => None,
                };
                match id {
                    Some(Json::String(id)) => self
                        .group_index
                        .get(id.as_ref())
                        .and_then(|&g| self.group_needs.get(g as usize).copied())
                        .unwrap_or_default(),
                    _ => Needs::default(),
                }
            }
            other => selector_needs(other),
        }
    }

    /// `include` (required, non-empty), `require`, `exclude` of a policy or Access group.
    pub(super) fn rules(&mut self, o: &Obj<'j>, path: &Path<'_>) -> (Option<Rules>, Needs) {
        let mut rules = Rules::default();
        let mut needs = Needs::default();
        let mut ok = true;
        for key in ["include", "require", "exclude"] {
            let at = path.key(key);
            let items = match o.get(key) {
                Some(v) => match self.p.array(v, &at) {
                    Some(items) => items,
                    None => {
                        ok = false;
                        continue;
                    }
                },
                None if key == "include" => {
                    self.p.add(path, "missing field `include`");
                    ok = false;
                    continue;
                }
                None => &[],
            };
            if key == "include" && items.is_empty() {
                self.p.add(&at, "a policy needs at least one include rule");
                ok = false;
            }
            let list = match key {
                "include" => &mut rules.include,
                "require" => &mut rules.require,
                _ => &mut rules.exclude,
            };
            for (i, item) in items.iter().enumerate() {
                match parse_rule(self, item, &at.index(i)) {
                    Some((rule, n)) => {
                        list.push(rule);
                        needs = needs.union(n);
                    }
                    None => ok = false,
                }
            }
        }
        (ok.then_some(rules), needs)
    }

    pub(super) fn idp(
        &mut self,
        v: Option<&'j Json<'j>>,
        path: &Path<'_>,
        key: &str,
    ) -> Option<IdpIx> {
        let Some(v) = v else {
            self.p.add(path, format!("missing field `{key}`"));
            return None;
        };
        let at = path.key(key);
        let s = self.p.string(v, &at)?;
        let found = self.idp_index.get(s).copied();
        if found.is_none() {
            self.p.add(&at, format!("unknown identity provider `{s}`"));
        }
        found.map(|i| IdpIx::new(MINTED, i))
    }

    pub(super) fn reference_group(&mut self, group: GroupId) -> RefGroupIx {
        let next = u32::try_from(self.referenced.len()).unwrap_or(u32::MAX);
        let referenced = &mut self.referenced;
        let index = *self.referenced_index.entry(group).or_insert_with(|| {
            referenced.push(group);
            next
        });
        RefGroupIx::new(MINTED, index)
    }
}

/// What a selector needs, by its key alone (Access groups are resolved by the caller).
pub(super) fn selector_needs(key: &str) -> Needs {
    match key {
        "email" | "email_domain" | "email_list" | "azureAD" | "login_method" | "auth_method"
        | "auth_context" | "oidc" => Needs::identity(match key {
            "email" => "email",
            "email_domain" => "email_domain",
            "email_list" => "email_list",
            "azureAD" => "azureAD",
            "login_method" => "login_method",
            "auth_method" => "auth_method",
            "auth_context" => "auth_context",
            _ => "oidc",
        }),
        "service_token" => Needs {
            identity: None,
            service_token: Some("service_token"),
        },
        "any_valid_service_token" => Needs {
            identity: None,
            service_token: Some("any_valid_service_token"),
        },
        _ => Needs::default(),
    }
}

/// One rule: an object with exactly one selector key.
pub(super) fn parse_rule<'j>(
    l: &mut Loader<'j, '_>,
    v: &'j Json<'j>,
    path: &Path<'_>,
) -> Option<(Rule, Needs)> {
    let Json::Object(entries) = v else {
        l.p.add(path, format!("expected an object, found {}", v.kind()));
        return None;
    };
    let [(key, inner)] = entries.as_slice() else {
        l.p.add(
            path,
            format!(
                "a rule must have exactly one selector key, found {}",
                entries.len()
            ),
        );
        return None;
    };
    let at = path.key(key);
    let needs = selector_needs(key);
    let field = |l: &mut Loader<'j, '_>, o: &Obj<'j>, name: &str| -> Option<&'j str> {
        let v = o.required(name, &at, &mut l.p)?;
        l.p.nonempty(v, &at.key(name))
    };
    let rule = match key.as_ref() {
        "everyone" | "certificate" | "any_valid_service_token" => {
            l.p.object(inner, &at, &[], &[])?;
            match key.as_ref() {
                "everyone" => Rule::Everyone,
                "certificate" => Rule::Certificate,
                _ => Rule::AnyServiceToken,
            }
        }
        "email" => {
            let o = l.p.object(inner, &at, &["email"], &[])?;
            let s = field(l, &o, "email")?;
            let e = Email::parse(s)
                .map_err(|e| l.p.add(&at.key("email"), format!("{e} `{s}`")))
                .ok()?;
            Rule::Email(boxed(e.as_str()))
        }
        "email_domain" => {
            let o = l.p.object(inner, &at, &["domain"], &[])?;
            let s = field(l, &o, "domain")?;
            let d = parse_domain(s)
                .map_err(|m| l.p.add(&at.key("domain"), format!("`{s}` {m}")))
                .ok()?;
            Rule::EmailDomain(d)
        }
        "email_list" | "ip_list" => {
            let o = l.p.object(inner, &at, &["id"], &[])?;
            let id = field(l, &o, "id")?;
            let Some(&index) = l.list_index.get(id) else {
                l.p.add(&at.key("id"), format!("unknown list `{id}`"));
                return None;
            };
            let list = l.lists.get(index as usize)?;
            match (key.as_ref(), &list.items) {
                ("email_list", ListItems::Emails(_)) => Rule::EmailList(ListIx::new(MINTED, index)),
                ("ip_list", ListItems::Ranges(_)) => Rule::IpList(ListIx::new(MINTED, index)),
                ("email_list", _) => {
                    l.p.add(
                        &at.key("id"),
                        format!("`email_list` needs a list of type `EMAIL`; `{id}` is not"),
                    );
                    return None;
                }
                _ => {
                    l.p.add(
                        &at.key("id"),
                        format!("`ip_list` needs a list of type `IP`; `{id}` is not"),
                    );
                    return None;
                }
            }
        }
        "ip" => {
            let o = l.p.object(inner, &at, &["ip"], &[])?;
            let s = o
                .required("ip", &at, &mut l.p)
                .and_then(|v| l.p.string(v, &at.key("ip")))?;
            Rule::Ip(
                IpRange::parse(s)
                    .map_err(|m| l.p.add(&at.key("ip"), m))
                    .ok()?,
            )
        }
        "geo" => {
            let o = l.p.object(inner, &at, &["country_code"], &[])?;
            let s = field(l, &o, "country_code")?;
            let c = Country::parse(s)
                .map_err(|e| l.p.add(&at.key("country_code"), format!("{e} `{s}`")))
                .ok()?;
            Rule::Geo(c)
        }
        "azureAD" => {
            let o =
                l.p.object(inner, &at, &["id", "identity_provider_id"], &[])?;
            let s = field(l, &o, "id");
            let group = s.and_then(|s| {
                GroupId::parse(s)
                    .map_err(|e| l.p.add(&at.key("id"), format!("`{s}` is {e}")))
                    .ok()
            });
            let idp = l.idp(o.get("identity_provider_id"), &at, "identity_provider_id");
            if let Some(provider) = idp.and_then(|i| l.idps.get(i.get())) {
                if !provider.support_groups {
                    l.warnings.push(Warning {
                        path: at.to_string(),
                        message: format!(
                            "never matches: identity provider `{}` has `support_groups` off, so \
                             no groups are read from it (an `exclude` on it excludes no one)",
                            provider.id
                        ),
                    });
                }
            }
            Rule::AzureGroup {
                group: l.reference_group(group?),
                idp: idp?,
            }
        }
        "group" => {
            let o = l.p.object(inner, &at, &["id"], &[])?;
            let id = field(l, &o, "id")?;
            let Some(&g) = l.group_index.get(id) else {
                l.p.add(&at.key("id"), format!("unknown access group `{id}`"));
                return None;
            };
            if let Some(from) = l.current_group {
                l.group_edges.push(GroupEdge {
                    from,
                    to: g,
                    path: at.key("id").to_string(),
                });
            }
            Rule::AccessGroup(GroupIx::new(MINTED, g))
        }
        "login_method" => {
            let o = l.p.object(inner, &at, &["id"], &[])?;
            Rule::LoginMethod(l.idp(o.get("id"), &at, "id")?)
        }
        "auth_method" => {
            let o = l.p.object(inner, &at, &["auth_method"], &[])?;
            Rule::AuthMethod(boxed(field(l, &o, "auth_method")?))
        }
        "auth_context" => {
            let o =
                l.p.object(inner, &at, &["id", "ac_id", "identity_provider_id"], &[])?;
            let _id = field(l, &o, "id");
            let ac_id = field(l, &o, "ac_id");
            let idp = l.idp(o.get("identity_provider_id"), &at, "identity_provider_id");
            Rule::AuthContext {
                ac_id: boxed(ac_id?),
                idp: idp?,
            }
        }
        "oidc" => {
            let o = l.p.object(
                inner,
                &at,
                &["claim_name", "claim_value", "identity_provider_id"],
                &[],
            )?;
            let claim = field(l, &o, "claim_name");
            let value = o
                .required("claim_value", &at, &mut l.p)
                .and_then(|v| l.p.string(v, &at.key("claim_value")));
            let idp = l.idp(o.get("identity_provider_id"), &at, "identity_provider_id");
            Rule::Oidc {
                claim: boxed(claim?),
                value: boxed(value?),
                idp: idp?,
            }
        }
        "service_token" => {
            let o = l.p.object(inner, &at, &["token_id"], &[])?;
            let id = field(l, &o, "token_id")?;
            if l.service_tokens_given && !l.service_tokens.iter().any(|t| *t.id == *id) {
                l.p.add(&at.key("token_id"), format!("unknown service token `{id}`"));
                return None;
            }
            Rule::ServiceToken(boxed(id))
        }
        "common_name" => {
            let o = l.p.object(inner, &at, &["common_name"], &[])?;
            Rule::CommonName(boxed(field(l, &o, "common_name")?))
        }
        other if UNSUPPORTED_SELECTORS.contains(&other) => {
            l.p.add(path, format!("unsupported selector `{other}`"));
            return None;
        }
        other => {
            l.p.add(path, format!("unknown selector `{other}`"));
            return None;
        }
    };
    Some((rule, needs))
}
