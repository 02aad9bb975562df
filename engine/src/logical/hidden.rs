//! Names of the columns and relations that planning adds and users never see.
//!
//! Planning needs names of its own: aggregate results the select list is rewritten onto, sort
//! keys carried through a projection, the value and correlation columns of a decorrelated
//! subquery, the two sides of a dataframe join, the columns of the distinct-aggregate rewrite.
//! Every such name is made here, and every one starts with [`MARK`], a control character that
//! no user-visible name may contain: sources whose column names contain it are refused
//! ([`check_user_name`]), and so are SQL identifiers and dataframe aliases. So a user column
//! named `__agg1` (or anything else) can never be taken for an internal one, and an internal
//! name never shadows a user's.
//!
//! Plans show hidden names with the mark written as `#` (see [`display`]), e.g. `#agg0`.

use std::borrow::Cow;

use crate::error::{EngineError, Result};

/// The first character of every hidden name (U+0001, START OF HEADING).
pub(crate) const MARK: char = '\u{1}';

/// What a hidden name is for; its text appears in plans (`#agg0`, `#sort1`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// An aggregate result in the output of an aggregation.
    Aggregate,
    /// A computed grouping key in the output of an aggregation.
    GroupKey,
    /// A sort key that is not in the select list, projected away after the sort.
    SortKey,
    /// The relation of a planned subquery.
    Subquery,
    /// The value column of a scalar or `IN` subquery.
    SubqueryValue,
    /// An inner column a correlated subquery exports for its join with the outer query.
    Correlation,
    /// The left input of a dataframe join.
    JoinLeft,
    /// The right input of a dataframe join.
    JoinRight,
    /// The distinct argument column of the distinct-aggregate rewrite.
    DistinctValue,
    /// A plain aggregate's argument carried through the distinct-aggregate rewrite.
    PlainArgument,
    /// A partial aggregate of the distinct-aggregate rewrite.
    PartialAggregate,
    /// The relation of a union planned for a `UNION` without `ALL`.
    Union,
    /// `INTERSECT`/`EXCEPT`: which input a row came from (0: left, 1: right), and the
    /// smallest and largest of it per distinct row.
    SetSide,
    /// The marker of a mark join: whether an `EXISTS` or `IN` subquery inside an expression
    /// (`a OR EXISTS (...)`) found a row, and the statistics of an `IN` subquery's values.
    Mark,
    /// The result of a window function call in the output of a window node.
    Window,
    /// A grouping key (NULL where a grouping set leaves it out) or the set's number, in the
    /// expanded input of a `GROUP BY` with grouping sets.
    GroupingSet,
    /// A rank, count or picked value of the quantile rewrite.
    Quantile,
    /// The distinct values of a subquery's outer references (and their relation), joined
    /// into a subquery correlated by conditions other than equalities.
    Domain,
}

impl Role {
    fn text(self) -> &'static str {
        match self {
            Role::Aggregate => "agg",
            Role::GroupKey => "key",
            Role::SortKey => "sort",
            Role::Subquery => "sq",
            Role::SubqueryValue => "value",
            Role::Correlation => "corr",
            Role::JoinLeft => "left",
            Role::JoinRight => "right",
            Role::DistinctValue => "distinct",
            Role::PlainArgument => "arg",
            Role::PartialAggregate => "partial",
            Role::Union => "union",
            Role::SetSide => "side",
            Role::Mark => "mark",
            Role::Window => "win",
            Role::GroupingSet => "gset",
            Role::Quantile => "q",
            Role::Domain => "domain",
        }
    }
}

/// The hidden name for `role` number `n` (`MARK` + role + `n`).
pub(crate) fn name(role: Role, n: usize) -> String {
    format!("{MARK}{}{n}", role.text())
}

/// The relation of a reference to a column of the enclosing query, qualified `qualifier` there
/// (subquery decorrelation marks outer references this way while the subquery is planned).
pub(crate) fn outer_relation(qualifier: Option<&str>) -> String {
    format!("{MARK}outer:{}", qualifier.unwrap_or(""))
}

/// The enclosing query's qualifier of an outer reference's relation (empty when it had none);
/// `None` for any other relation.
pub(crate) fn strip_outer(relation: &str) -> Option<&str> {
    relation.strip_prefix(MARK)?.strip_prefix("outer:")
}

/// True for a name made by this module.
pub(crate) fn is_hidden(name: &str) -> bool {
    name.starts_with(MARK)
}

/// True for a hidden name of `role` (whatever its number).
pub(crate) fn has_role(name: &str, role: Role) -> bool {
    name.strip_prefix(MARK)
        .and_then(|rest| rest.strip_prefix(role.text()))
        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// A name as plans show it: the mark of a hidden name written as `#`.
pub(crate) fn display(name: &str) -> Cow<'_, str> {
    if name.contains(MARK) {
        Cow::Owned(name.replace(MARK, "#"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Refuse a name given by a user or read from a data source when it contains [`MARK`]: such
/// a name could be taken for a hidden one.
pub(crate) fn check_user_name(name: &str, what: &str) -> Result<()> {
    if name.contains(MARK) {
        return Err(EngineError::Plan(format!(
            "{what} '{}' contains the control character U+0001, which ooc reserves for its \
             internal names; rename it",
            name.replace(MARK, "\\u{1}")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_names_are_recognized_by_role_and_shown_with_a_hash() {
        let agg = name(Role::Aggregate, 12);
        assert!(is_hidden(&agg));
        assert!(has_role(&agg, Role::Aggregate));
        assert!(!has_role(&agg, Role::SortKey));
        assert_eq!(display(&agg), "#agg12");
        assert_eq!(display("plain"), "plain");
        // What users can write is never hidden.
        for user in ["__agg1", "#agg1", "agg1", "__ooc_sort_0", ""] {
            assert!(!is_hidden(user), "{user}");
            assert!(check_user_name(user, "column").is_ok());
        }
        let refused = check_user_name(&agg, "column").unwrap_err().to_string();
        assert!(refused.contains("\\u{1}agg12"), "{refused}");
        let outer = outer_relation(Some("lineitem"));
        assert_eq!(strip_outer(&outer), Some("lineitem"));
        assert_eq!(strip_outer(&outer_relation(None)), Some(""));
        assert_eq!(strip_outer("lineitem"), None);
    }
}
