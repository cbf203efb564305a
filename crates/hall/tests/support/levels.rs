//! Set-up for tests of two levels: the county above the support township,
//! and the same case worked on at both. Included with `#[path]` beside
//! `support`.

use std::path::Path;

use hallsync_hall::Hall;
use hallsync_model::{EventKind, Level, NodeId, RegionCode, Ts};
use hallsync_store::StoreOptions;

/// A new county node (cn-212, region 140212) in `dir`.
pub fn county(dir: &Path) -> Hall {
    Hall::init(
        dir,
        NodeId::parse("cn-212").unwrap(),
        "样例县政务服务中心",
        RegionCode::parse("140212").unwrap(),
        Level::County,
        StoreOptions::default(),
    )
    .unwrap()
}

/// The township starts a step on case `number` and, a minute later, the
/// county asks for supplements on it, each on its own copy. Returns the
/// case's document id.
pub fn act_at_both_levels(town: &Hall, county: &Hall, number: &str, at: Ts) -> String {
    let id = town.case_id(number).unwrap().to_string();
    let step = EventKind::StepStarted {
        step: "审核".into(),
    };
    town.record_event(number, step, "王芳", at, at).unwrap();
    let supplement = EventKind::SupplementRequested {
        materials: "户口簿复印件".into(),
    };
    county
        .record_event(&id, supplement, "县督查", at.plus(60), at.plus(60))
        .unwrap();
    id
}
