//! Applications (`apps[]`): domains, audiences, their policies and settings.

use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;

use crate::ix::{IdpIx, PolicyIx};
use crate::json::{boxed, Json, Path};
use crate::model::{App, Policy, Slot, Warning};
use crate::route::DomainPattern;

use super::policies::inline_precedence;
use super::{Loader, MINTED, READ_ONLY};

impl<'j> Loader<'j, '_> {
    pub(super) fn app(
        &mut self,
        v: &'j Json<'j>,
        path: &Path<'_>,
        policies: &mut Vec<Policy>,
        reusable: usize,
    ) -> Option<App> {
        let o = self.object(
            v,
            path,
            &[
                "id",
                "name",
                "domain",
                "aud",
                "type",
                "session_duration",
                "policies",
                "allowed_idps",
                "custom_deny_url",
                "custom_non_identity_deny_url",
                "custom_deny_message",
                "allow_encoded_slashes",
                "auto_redirect_to_identity",
                // Accepted for API compatibility, no effect (README).
                "app_launcher_visible",
                "logo_url",
                "tags",
                "skip_interstitial",
            ],
            &["created_at", "updated_at", "uid"],
        )?;
        let id = o
            .required("id", path, &mut self.p)
            .and_then(|v| self.p.nonempty(v, &path.key("id")));
        let name = o
            .required("name", path, &mut self.p)
            .and_then(|v| self.p.string(v, &path.key("name")));
        let domain = o.required("domain", path, &mut self.p).and_then(|v| {
            let at = path.key("domain");
            let s = self.p.string(v, &at)?;
            DomainPattern::parse(s).map_err(|m| self.p.add(&at, m)).ok()
        });
        let aud = o
            .required("aud", path, &mut self.p)
            .and_then(|v| self.p.nonempty(v, &path.key("aud")));
        if let Some(t) = o.get("type") {
            if let Some(t) = self.p.string(t, &path.key("type")) {
                if t != "self_hosted" {
                    self.p.add(
                        &path.key("type"),
                        format!("unsupported app type `{t}` (only `self_hosted`)"),
                    );
                }
            }
        }
        let session = o
            .get("session_duration")
            .and_then(|v| self.duration(v, &path.key("session_duration")));
        let allowed_idps = o.get("allowed_idps").map(|v| {
            let at = path.key("allowed_idps");
            let items = self.p.array(v, &at).unwrap_or(&[]);
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let ip = at.index(i);
                if let Some(s) = self.p.string(item, &ip) {
                    match self.idp_index.get(s) {
                        Some(&idx) => out.push(IdpIx::new(MINTED, idx)),
                        None => self.p.add(&ip, format!("unknown identity provider `{s}`")),
                    }
                }
            }
            out
        });
        let text = |this: &mut Self, key: &str| {
            o.get(key)
                .and_then(|v| this.p.string(v, &path.key(key)))
                .map(boxed)
        };
        let custom_deny_url = text(self, "custom_deny_url");
        let custom_non_identity_deny_url = text(self, "custom_non_identity_deny_url");
        let custom_deny_message = text(self, "custom_deny_message");
        let allow_encoded_slashes = o
            .get("allow_encoded_slashes")
            .and_then(|v| self.p.boolean(v, &path.key("allow_encoded_slashes")))
            .unwrap_or(false);
        let auto_redirect_to_identity = o
            .get("auto_redirect_to_identity")
            .and_then(|v| self.p.boolean(v, &path.key("auto_redirect_to_identity")))
            .unwrap_or(false);
        for (key, url) in [
            ("custom_deny_url", &custom_deny_url),
            (
                "custom_non_identity_deny_url",
                &custom_non_identity_deny_url,
            ),
        ] {
            if let Some(u) = url {
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    self.p.add(
                        &path.key(key),
                        format!("`{u}` is not an absolute http(s) URL"),
                    );
                }
            }
        }

        let policies_path = path.key("policies");
        let items = o
            .required("policies", path, &mut self.p)
            .and_then(|v| self.p.array(v, &policies_path))
            .unwrap_or(&[]);
        if items.is_empty() && o.get("policies").is_some() {
            self.warnings.push(Warning {
                path: policies_path.to_string(),
                message: "the app has no policies: every request to it is denied".into(),
            });
        }
        // Each slot with whether its precedence was written (and so has a path to report).
        let mut slots: Vec<(Slot, bool)> = Vec::new();
        let mut explicit = 0usize;
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let at = policies_path.index(i);
            let implicit = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let linked = match item {
                Json::String(id) => self.link(id, &at, reusable).map(|p| (p, None)),
                Json::Object(entries)
                    if !entries
                        .iter()
                        .any(|(k, _)| k == "decision" || k == "include") =>
                {
                    let lo = self.object(item, &at, &["id", "precedence"], READ_ONLY);
                    lo.and_then(|lo| {
                        let id = lo.required("id", &at, &mut self.p)?;
                        let id = self.p.string(id, &at.key("id"))?;
                        let precedence = lo
                            .get("precedence")
                            .and_then(|v| self.p.integer(v, &at.key("precedence")));
                        let index = self.link(id, &at.key("id"), reusable)?;
                        Some((index, precedence))
                    })
                }
                _ => {
                    let parsed = self.policy(item, &at, true);
                    let (policy, precedence) = match parsed {
                        Some((policy, precedence)) => (Some(policy), precedence),
                        // Keep checking precedence even when the policy body is bad.
                        None => (None, inline_precedence(item)),
                    };
                    if let Some(id) = policy.as_ref().and_then(|p| p.id.as_ref()) {
                        if self.policy_index.contains_key(id.as_ref()) {
                            self.p.add(&at.key("id"), format!("duplicate id `{id}`"));
                        }
                    }
                    match policy {
                        Some(policy) => {
                            let index = u32::try_from(policies.len()).unwrap_or(u32::MAX);
                            policies.push(policy);
                            Some((index, precedence))
                        }
                        None => {
                            ok = false;
                            Some((u32::MAX, precedence))
                        }
                    }
                }
            };
            let Some((policy, precedence)) = linked else {
                ok = false;
                continue;
            };
            if precedence.is_some() {
                explicit += 1;
            }
            let (value, written) = match precedence {
                Some(n) => (n, true),
                None => (implicit, false),
            };
            if (policy as usize) < reusable
                && slots.iter().any(|(s, _)| s.policy.get() == policy as usize)
            {
                self.p
                    .add(&at, "the same policy is attached to this app twice");
                ok = false;
            }
            slots.push((
                Slot {
                    // A failed inline policy leaves `u32::MAX` here, and the app is dropped.
                    policy: PolicyIx::new(MINTED, policy),
                    precedence: value,
                },
                written,
            ));
        }
        if explicit != 0 && explicit != slots.len() {
            if let Some(i) = slots.iter().position(|(_, written)| !written) {
                self.p.add(
                    &policies_path.index(i),
                    "precedence must be given for every policy of the app or for none",
                );
            }
            ok = false;
        } else {
            for (i, (slot, written)) in slots.iter().enumerate() {
                let earlier = slots.get(..i).unwrap_or(&[]);
                if earlier.iter().any(|(s, _)| s.precedence == slot.precedence) {
                    let item = policies_path.index(i);
                    let at = if *written {
                        item.key("precedence")
                    } else {
                        item
                    };
                    self.p
                        .add(&at, format!("duplicate precedence `{}`", slot.precedence));
                    ok = false;
                }
            }
        }
        let mut order: Vec<Slot> = slots.into_iter().map(|(s, _)| s).collect();
        let first = |s: &Slot| {
            policies
                .get(s.policy.get())
                .is_some_and(|p| p.action.is_first_pass())
        };
        order.sort_by_key(|s| (!first(s), s.precedence));
        let first_pass = order.iter().take_while(|s| first(s)).count();
        if !ok {
            return None;
        }
        Some(App {
            id: boxed(id?),
            name: boxed(name?),
            domain: domain?,
            aud: boxed(aud?),
            session,
            allowed_idps,
            custom_deny_url,
            custom_non_identity_deny_url,
            custom_deny_message,
            allow_encoded_slashes,
            auto_redirect_to_identity,
            order,
            first_pass,
        })
    }

    pub(super) fn link(&mut self, id: &str, path: &Path<'_>, reusable: usize) -> Option<u32> {
        match self.policy_index.get(id) {
            Some(&i) if (i as usize) < reusable => Some(i),
            _ => {
                self.p.add(path, format!("unknown policy `{id}`"));
                None
            }
        }
    }
}
