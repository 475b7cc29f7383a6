//! What a write does to sessions and gateways, in the write's own batch. The users a write
//! touches are recorded in `scim_affected` by statements that run inside the batch, before
//! the write — so the set is exactly the one the write changes, even under concurrent
//! writes; their sessions are then revoked or regrouped ([`crate::session_store`]), and the
//! directory generation (`scim_state`) moves when names, policy ids or nesting changed.

use policy_core::IdentityUpdateBehavior;
use worker::{D1PreparedStatement, D1Result};

use super::users::UserRow;
use super::{Failure, Store};
use crate::d1::Binds;
use crate::session_store;

/// The object ids whose sessions a write revokes.
const REVOKED: &str = "SELECT oid FROM scim_affected WHERE revoke = 1";

/// The object ids whose sessions' groups a write recomputes.
const REGROUPED: &str = "SELECT oid FROM scim_affected WHERE revoke = 0";

/// The policy ids of the SCIM groups (transitively) of a session's user: the active SCIM
/// user bound to its object id; none (deleted, disabled) means no groups.
const SESSION_GROUPS: &str = "WITH RECURSIVE up(g) AS ( \
       SELECT m.group_id FROM scim_members m WHERE m.member_id = \
         (SELECT u.id FROM scim_users u WHERE u.active = 1 \
            AND u.oid = lower(sessions.user_id)) \
       UNION SELECT m.group_id FROM scim_members m JOIN up ON m.member_id = up.g) \
     SELECT json_group_array(g.policy_id) FROM up JOIN scim_groups g ON g.id = up.g";

/// What a write does besides itself: statements filling `scim_affected` (run before the
/// write), and whether the compiled directory (names, policy ids, nesting) changed.
#[derive(Default)]
pub(super) struct Effects {
    record: Vec<D1PreparedStatement>,
    directory: bool,
}

impl Effects {
    /// No sessions touched yet; `directory` says whether the compiled directory changes.
    pub(super) fn new(directory: bool) -> Effects {
        Effects {
            record: Vec::new(),
            directory,
        }
    }
}

/// A write's batch, with where its session statements are (for the log).
#[derive(Default)]
pub(super) struct Prepared {
    statements: Vec<D1PreparedStatement>,
    revoke_at: Option<usize>,
    regroup_at: Option<usize>,
    /// Where the write's statements end.
    write_end: usize,
}

impl Prepared {
    /// Where the write's last statement is, for a write that ends with a read.
    pub(super) fn last_written(&self) -> Option<usize> {
        self.write_end.checked_sub(1)
    }
}

/// Where the users touched by a membership change are found: under these members (users or
/// groups, transitively), or under every current member of a group.
pub(super) enum Touched<'s> {
    Members(&'s [String]),
    MembersOf(&'s str),
}

impl Store<'_> {
    /// What a membership change does to the touched users' sessions under the provider's
    /// `scim_config`: `Some(true)` revokes them, `Some(false)` recomputes their stored groups.
    fn membership_effect(&self, removal: bool) -> Option<bool> {
        let config = &self.settings.config;
        if config.identity_update_behavior == IdentityUpdateBehavior::Reauth
            || (removal && config.group_member_deprovision)
        {
            Some(true)
        } else if config.identity_update_behavior == IdentityUpdateBehavior::Automatic {
            Some(false)
        } else {
            None
        }
    }

    /// Records the users a membership change touches (nothing when it does not matter).
    pub(super) fn touch(
        &self,
        effects: &mut Effects,
        touched: Touched<'_>,
        removal: bool,
    ) -> Result<(), Failure> {
        let Some(revoke) = self.membership_effect(removal) else {
            return Ok(());
        };
        let mut binds = Binds::default();
        let seed = match touched {
            Touched::Members([]) => return Ok(()),
            Touched::Members(ids) => {
                format!("SELECT value FROM json_each({})", binds.json_list(ids))
            }
            Touched::MembersOf(group) => format!(
                "SELECT member_id FROM scim_members WHERE group_id = {}",
                binds.text(group)
            ),
        };
        let revoke = binds.flag(revoke);
        effects.record.push(self.statement(
            &format!(
                "WITH RECURSIVE down(id) AS ({seed} \
                   UNION SELECT m.member_id FROM scim_members m JOIN down ON m.group_id = down.id) \
                 INSERT INTO scim_affected (oid, revoke) \
                 SELECT oid, {revoke} FROM scim_users \
                   WHERE id IN (SELECT id FROM down) AND oid IS NOT NULL \
                 ON CONFLICT (oid) DO UPDATE SET revoke = max(revoke, excluded.revoke)"
            ),
            &binds,
        )?);
        Ok(())
    }

    /// Records a user whose sessions end (deprovisioning), by object id. A user without one
    /// (stored before `user_deprovision` required it, or stored disabled) has the sessions of
    /// its addresses revoked instead: the direction that cannot let anyone in.
    pub(super) fn deprovision(&self, effects: &mut Effects, row: &UserRow) -> Result<(), Failure> {
        let statement = match &row.oid {
            Some(oid) => {
                let mut binds = Binds::default();
                let oid = binds.text(oid);
                self.statement(
                    &format!(
                        "INSERT INTO scim_affected (oid, revoke) VALUES ({oid}, 1) \
                         ON CONFLICT (oid) DO UPDATE SET revoke = 1"
                    ),
                    &binds,
                )?
            }
            None => session_store::revoke_addresses(
                &self.db,
                self.now,
                &self.settings.idp_id,
                &row.keys(),
            )?,
        };
        effects.record.push(statement);
        Ok(())
    }

    /// The batch: the guard, what records the touched users, their revocations, the write,
    /// the recomputed groups of the others (which see the new memberships), then the
    /// directory generation.
    pub(super) fn around(
        &self,
        guard: Option<D1PreparedStatement>,
        effects: Effects,
        write: Vec<D1PreparedStatement>,
    ) -> Result<Prepared, Failure> {
        let mut batch: Vec<D1PreparedStatement> = guard.into_iter().collect();
        let any = !effects.record.is_empty();
        batch.extend(effects.record);
        let mut prepared = Prepared::default();
        let idp = &self.settings.idp_id;
        if any {
            prepared.revoke_at = Some(batch.len());
            batch.push(session_store::revoke_users(
                &self.db, self.now, idp, REVOKED,
            )?);
        }
        batch.extend(write);
        prepared.write_end = batch.len();
        if any {
            prepared.regroup_at = Some(batch.len());
            batch.push(session_store::set_groups(
                &self.db,
                self.now,
                idp,
                REGROUPED,
                SESSION_GROUPS,
            )?);
            batch.push(self.statement("DELETE FROM scim_affected", &Binds::default())?);
        }
        if effects.directory {
            batch.push(self.statement(
                "UPDATE scim_state SET value = value + 1 WHERE name = 'directory'",
                &Binds::default(),
            )?);
        }
        prepared.statements = batch;
        Ok(prepared)
    }

    /// Runs a batch; logs how many sessions it revoked and updated. Answers each statement's
    /// result.
    pub(super) async fn submit(
        &self,
        id: &str,
        prepared: Prepared,
    ) -> Result<Vec<D1Result>, worker::Error> {
        let results = self.db.batch(prepared.statements).await?;
        let changed = |at: Option<usize>| {
            at.and_then(|i| results.get(i))
                .and_then(|r| r.meta().ok().flatten())
                .and_then(|m| m.changes)
                .unwrap_or(0)
        };
        for (event, count) in [
            ("scim_sessions_revoked", changed(prepared.revoke_at)),
            ("scim_identities_updated", changed(prepared.regroup_at)),
        ] {
            if count > 0 {
                crate::log::event(event, &[("resource", id), ("sessions", &count.to_string())]);
            }
        }
        Ok(results)
    }
}
