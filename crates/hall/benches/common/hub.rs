//! What the hub benchmarks (statistics, cards) share: their settings from
//! the environment, a deterministic mix, and the header and events of a
//! township's case. Included with `#[path]`.

use hallsync_model::case::{Applicant, ItemRef};
use hallsync_model::catalogue::{CaseType, Disclosure};
use hallsync_model::{
    CaseEvent, CaseHeader, Category, EventKind, LimitUnit, LogId, NodeId, RegionCode, TimeLimit, Ts,
};

/// A number from the environment, or `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic mix for case `i`, 0 to 999.
pub fn mix(i: usize, salt: u32) -> usize {
    (i.wrapping_mul(2_654_435_761).rotate_left(salt) >> 7) % 1000
}

/// The header of case `i` of the township hall of `region` (node
/// `tw-REGION`), under its item number `item` with these limits in
/// working days.
pub fn header(i: usize, region: &str, item: usize, committed: u32, statutory: u32) -> CaseHeader {
    CaseHeader {
        number: format!("C{i:09}"),
        region: RegionCode::parse(region).unwrap(),
        hall: NodeId::parse(&format!("tw-{region}")).unwrap(),
        item: ItemRef {
            impl_code: format!("11{region}MB{item:04}K5000"),
            name: format!("事项{item}"),
            version: 1,
            category: Category::Licensing,
            agency: "镇人民政府".into(),
            statutory_limit: TimeLimit::new(statutory, LimitUnit::WorkingDays),
            committed_limit: TimeLimit::new(committed, LimitUnit::WorkingDays),
            case_type: CaseType::Committed,
            disclosure: Disclosure::Public,
            fees: None,
        },
        applicant: Applicant {
            name: "张三".into(),
            id_type: "身份证".into(),
            id_number: "140212199001011237".into(),
        },
        channel: "window".into(),
    }
}

/// Events recorded by one hall's clerk, numbered from 1.
pub struct Clerk {
    node: NodeId,
    n: u64,
}

impl Clerk {
    /// The clerk of `node`.
    pub fn of(node: &NodeId) -> Clerk {
        Clerk {
            node: node.clone(),
            n: 0,
        }
    }

    /// The next event, at `at`.
    pub fn event(&mut self, at: Ts, kind: EventKind) -> CaseEvent {
        self.n += 1;
        CaseEvent {
            id: LogId::new(&self.node, "a1b2c3d4", self.n).unwrap(),
            node: self.node.clone(),
            at,
            by: "王芳".into(),
            kind,
        }
    }
}
