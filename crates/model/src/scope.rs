//! Who may hold which record: the visibility rules replication enforces on
//! both send and receive.
//!
//! A node at region R may hold:
//! - every record of R's subtree (its own and, at a hub, its children's,
//!   for supervision);
//! - the catalogue items, calendars, supervision rules and registry
//!   entries of R's ancestors
//!   (the standards that come down, and the hubs above it).
//!
//! Nothing else: never a sibling's cases, nor a sibling's catalogue.
//!
//! A record addressed to a hall (a supervision order) is filed under the
//! addressee's region, not the writer's: a county's order to a township is
//! `order:TOWNSHIP:KEY`. The first rule then carries it down to that
//! township and up to every hub above it, and keeps it from the siblings.

use crate::ids::{DocId, DocKind, RegionCode};

/// Why a record is outside a node's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfScope {
    /// The record's region is neither in the node's subtree nor above it.
    Unrelated,
    /// The record is above the node but is not a shared kind (only
    /// catalogue items, calendars and registry entries come down).
    NotShared,
}

impl OutOfScope {
    /// A sentence for error messages and logs.
    pub fn reason(self) -> &'static str {
        match self {
            OutOfScope::Unrelated => {
                "it belongs to a region outside the node's subtree and its ancestors"
            }
            OutOfScope::NotShared => {
                "only catalogue items, calendars, supervision rules and registry entries come down from higher levels"
            }
        }
    }
}

/// Whether a node at `region` may hold the record `id`.
pub fn check(region: &RegionCode, id: &DocId) -> Result<(), OutOfScope> {
    if region.contains(id.region()) {
        Ok(())
    } else if !id.region().is_ancestor_of(region) {
        Err(OutOfScope::Unrelated)
    } else if matches!(
        id.kind(),
        DocKind::Item | DocKind::Cal | DocKind::Node | DocKind::Rules
    ) {
        Ok(())
    } else {
        Err(OutOfScope::NotShared)
    }
}

/// Whether a node at `region` takes changes to `id` from a peer at `from`.
/// A peer below it sends up only records of its own subtree (its cases,
/// items and registry entries, and replies to the orders addressed to it):
/// the standards of the levels above are changed there and come down, never
/// up, so a hall cannot rewrite its county's catalogue by editing its copy.
/// A peer at or above may send anything the node may hold.
pub fn accepts_from(region: &RegionCode, from: &RegionCode, id: &DocId) -> bool {
    !region.is_ancestor_of(from) || from.contains(id.region())
}

/// Whether a node at `region` may hold the record `id`.
pub fn visible(region: &RegionCode, id: &DocId) -> bool {
    check(region, id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }
    fn d(s: &str) -> DocId {
        DocId::parse(s).unwrap()
    }

    #[test]
    fn a_hall_below_sends_up_only_its_own_subtree() {
        let (county, town) = (r("330102"), r("330102001"));
        assert!(accepts_from(&county, &town, &d("case:330102001:a1")));
        assert!(accepts_from(&county, &town, &d("order:330102001:o1")));
        assert!(accepts_from(&county, &town, &d("node:330102001:tw-1")));
        assert!(!accepts_from(&county, &town, &d("item:330102:x")));
        assert!(!accepts_from(&county, &town, &d("cal:33:2026")));
        assert!(!accepts_from(&r("33"), &town, &d("node:330102:cn-102")));
        // From above, anything the node may hold.
        assert!(accepts_from(&town, &county, &d("item:330102:x")));
        assert!(accepts_from(&county, &r("33"), &d("case:330102001:a1")));
    }

    #[test]
    fn township_sees_own_and_ancestors_standards_only() {
        let town = r("330102001");
        assert!(visible(&town, &d("case:330102001:a1")));
        assert!(visible(&town, &d("item:330102:x")));
        assert!(visible(&town, &d("cal:33:2026")));
        assert!(visible(&town, &d("node:330102:cn-102")));
        assert!(visible(&town, &d("node:330102001:tw-1")));
        assert!(!visible(&town, &d("node:330102002:tw-2")));
        assert!(visible(&town, &d("order:330102001:cn-102.1")));
        assert!(!visible(&town, &d("order:330102002:cn-102.1")));
        assert_eq!(
            check(&town, &d("order:330102:cty-1.1")),
            Err(OutOfScope::NotShared)
        );
        assert_eq!(
            check(&town, &d("case:330102:c")),
            Err(OutOfScope::NotShared)
        );
        assert_eq!(
            check(&town, &d("case:330102002:a1")),
            Err(OutOfScope::Unrelated)
        );
        assert_eq!(
            check(&town, &d("item:330102002:x")),
            Err(OutOfScope::Unrelated)
        );
    }

    #[test]
    fn county_sees_its_subtree() {
        let county = r("330102");
        assert!(visible(&county, &d("case:330102001:a1")));
        assert!(visible(&county, &d("case:330102:a1")));
        assert!(!visible(&county, &d("case:330103001:a1")));
        assert!(visible(&county, &d("item:3301:x")));
        assert!(visible(&county, &d("order:330102001:cn-102.1")));
        assert!(visible(&r("3301"), &d("order:330102001:cn-102.1")));
    }
}
