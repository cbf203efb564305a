//! Shared set-up for the hall's tests and benchmark: a township node with a
//! published item. Included with `#[path]` where needed.

use std::path::Path;

use hallsync_hall::{Hall, NewCase};
use hallsync_model::case::Applicant;
use hallsync_model::catalogue::ItemContent;
use hallsync_model::{Level, NodeId, RegionCode, ReviewAction, Ts};
use hallsync_store::StoreOptions;

/// A new township node (tw-101, region 140212101) in `dir`.
pub fn township(dir: &Path) -> Hall {
    Hall::init(
        dir,
        NodeId::parse("tw-101").unwrap(),
        "样例镇便民服务中心",
        RegionCode::parse("140212101").unwrap(),
        Level::Township,
        StoreOptions::default(),
    )
    .unwrap()
}

/// A licensing item with a 20-working-day statutory limit.
pub fn item(code: &str, committed: &str) -> ItemContent {
    ItemContent::from_row([
        ("事项名称", "农村村民宅基地审批"),
        ("基本编码", "0100123"),
        ("实施编码", code),
        ("权力类别", "行政许可"),
        ("实施主体", "样例镇人民政府"),
        ("法定时限", "20个工作日"),
        ("承诺时限", committed),
    ])
    .unwrap()
}

/// Adds the item with a 10-working-day commitment, approved and published.
pub fn publish(hall: &Hall, code: &str, at: Ts) {
    hall.add_item(&item(code, "10个工作日"), "起草人", at)
        .unwrap();
    hall.review_item(code, ReviewAction::Approved, "法制办", "", at)
        .unwrap();
    hall.review_item(code, ReviewAction::Published, "法制办", "", at)
        .unwrap();
}

/// A window application under `code`, received (and accepted) at `at`.
pub fn new_case(code: &str, number: Option<String>, at: Ts) -> NewCase {
    NewCase {
        item_code: code.into(),
        number,
        applicant: Applicant {
            name: "张三丰".into(),
            id_type: "身份证".into(),
            id_number: "140212199001011234".into(),
        },
        channel: "window".into(),
        by: "王芳".into(),
        at,
        accept: true,
    }
}
