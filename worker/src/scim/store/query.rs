//! What a list request asks for, as SQL: its filter as a `WHERE` clause over the columns
//! that hold each attribute, its page as `LIMIT`/`OFFSET`, and what to return.

use edge_access_scim::{conditions, Condition, Filter, Page, Projection, ResourceKind};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::super::discovery::MAX_RESULTS;
use super::{Failure, Store};
use crate::d1::{self, Binds};

/// Page size when the client gives no `count`.
const DEFAULT_COUNT: u64 = 100;

/// A query parameter by name, without case.
fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What `attributes` and `excludedAttributes` ask to be returned (`id` and `schemas` always).
pub fn projection(query: &[(String, String)]) -> Result<Projection, Failure> {
    Ok(Projection::parse(
        param(query, "attributes"),
        param(query, "excludedAttributes"),
    )?)
}

/// The filter's conditions and the page asked for.
pub fn list_params(
    query: &[(String, String)],
    kind: ResourceKind,
) -> Result<(Vec<Condition>, Page), Failure> {
    let conditions = match param(query, "filter") {
        Some(text) => conditions(&Filter::parse(text)?, kind)?,
        None => Vec::new(),
    };
    let page = Page::parse(
        param(query, "startIndex"),
        param(query, "count"),
        DEFAULT_COUNT,
        MAX_RESULTS,
    )?;
    Ok((conditions, page))
}

/// `conditions` as a `WHERE` clause (empty for none) over `kind`'s table, its values bound
/// in `binds`. Groups are selected as `g`.
pub fn where_clause(conditions: &[Condition], kind: ResourceKind, binds: &mut Binds) -> String {
    let prefix = match kind {
        ResourceKind::User => "",
        ResourceKind::Group => "g.",
    };
    let mut parts = Vec::new();
    for c in conditions {
        let (column, value) = match c {
            Condition::Member(id) => {
                let member = binds.text(id);
                parts.push(format!(
                    "EXISTS (SELECT 1 FROM scim_members m WHERE m.group_id = {prefix}id \
                     AND m.member_id = {member})"
                ));
                continue;
            }
            Condition::Id(v) => ("id", binds.text(v)),
            Condition::UserName(v) => ("user_name_key", binds.text(v)),
            Condition::ExternalId(v) => ("external_id", binds.text(v)),
            Condition::WorkEmail(v) => ("work_email_key", binds.text(v)),
            Condition::DisplayName(v) => ("display_name_key", binds.text(v)),
            Condition::Active(b) => ("active", binds.flag(*b)),
        };
        parts.push(format!("{prefix}{column} = {value}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", parts.join(" AND "))
    }
}

impl Store<'_> {
    /// One page of `select` (with `COUNT(*) OVER () AS total`) under `clause` (whose values
    /// are in `binds`): a single query, which also counts every match.
    pub(super) async fn page<T: DeserializeOwned>(
        &self,
        select: &str,
        clause: &str,
        order: &str,
        binds: &Binds,
        page: Page,
    ) -> Result<Vec<T>, Failure> {
        if page.count == 0 {
            return Ok(Vec::new());
        }
        let mut binds = binds.clone();
        let limit = binds.number(page.count);
        let offset = binds.number(page.start_index - 1);
        Ok(self
            .statement(
                &format!("{select}{clause} ORDER BY {order} LIMIT {limit} OFFSET {offset}"),
                &binds,
            )?
            .all()
            .await?
            .results()?)
    }

    /// The number of matches when the page came back empty: none on a first page, else
    /// counted (a page past the end, or `count=0`).
    pub(super) async fn count(
        &self,
        table: &str,
        clause: &str,
        binds: &Binds,
        page: Page,
    ) -> Result<u64, Failure> {
        #[derive(Deserialize)]
        struct Count {
            n: f64,
        }
        if page.count > 0 && page.start_index == 1 {
            return Ok(0);
        }
        let total: Option<Count> = self
            .statement(&format!("SELECT COUNT(*) AS n FROM {table}{clause}"), binds)?
            .first(None)
            .await?;
        Ok(total.map_or(0, |c| d1::int(c.n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::d1::Arg;

    #[test]
    fn conditions_become_a_clause_with_their_values_in_order() {
        let mut binds = Binds::default();
        let clause = where_clause(
            &[Condition::UserName("ada".into()), Condition::Active(true)],
            ResourceKind::User,
            &mut binds,
        );
        assert_eq!(clause, " WHERE user_name_key = ?1 AND active = ?2");
        assert_eq!(binds.args(), [Arg::Text("ada".into()), Arg::Number(1.0)]);

        let mut binds = Binds::default();
        let clause = where_clause(
            &[
                Condition::DisplayName("eng".into()),
                Condition::Member("u1".into()),
            ],
            ResourceKind::Group,
            &mut binds,
        );
        assert_eq!(
            clause,
            " WHERE g.display_name_key = ?1 AND EXISTS (SELECT 1 FROM scim_members m \
             WHERE m.group_id = g.id AND m.member_id = ?2)"
        );
        assert_eq!(
            binds.args(),
            [Arg::Text("eng".into()), Arg::Text("u1".into())]
        );

        let mut none = Binds::default();
        assert_eq!(where_clause(&[], ResourceKind::User, &mut none), "");
        assert!(none.args().is_empty());
    }
}
