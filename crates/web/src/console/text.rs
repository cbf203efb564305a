//! What the console says, in Chinese: names of states, events, units and
//! rules, and a message for each of the API's stable error codes that
//! tells the operator what to do (the English detail stays available).

use hallsync_api::ApiError;
use hallsync_model::case::{Outcome, Procedure};
use hallsync_model::catalogue::ItemStatus;
use hallsync_model::idcheck::IdNumberError;
use hallsync_model::order::{Card, OrderState, Resolution, Rule, Verdict};
use hallsync_model::{LimitUnit, ReviewAction, TimeLimit};

/// Event kinds by stored name: the button or heading the console shows.
pub const EVENTS: &[(&str, &str)] = &[
    ("received", "接件"),
    ("supplement_requested", "一次性告知补正"),
    ("supplement_completed", "补正材料已收齐"),
    ("accepted", "受理"),
    ("not_accepted", "不予受理"),
    ("step_started", "开始办理环节"),
    ("step_finished", "办理环节完成"),
    ("special_started", "启动特别程序"),
    ("special_ended", "特别程序结束"),
    ("extended", "延长审批时限"),
    ("fee_charged", "收费"),
    ("concluded", "办结"),
    ("withdrawn", "申请人撤件"),
    ("recalled", "撤回决定"),
    ("revoked", "撤销决定"),
    ("certificate_delivered", "证照送达"),
    ("published", "办件公开"),
    ("forwarded", "上报上级"),
    ("filed", "不公开事项备案"),
    ("rated", "满意度评价"),
];

/// The Chinese name of an event kind.
pub fn event(name: &str) -> &str {
    EVENTS.iter().find(|e| e.0 == name).map_or(name, |e| e.1)
}

/// Special procedures (Licensing Law art. 45), stored name and Chinese.
pub const PROCEDURES: &[(Procedure, &str)] = &[
    (Procedure::Hearing, "听证"),
    (Procedure::Bidding, "招标"),
    (Procedure::Auction, "拍卖"),
    (Procedure::Testing, "检验"),
    (Procedure::Inspection, "检测"),
    (Procedure::Quarantine, "检疫"),
    (Procedure::Appraisal, "鉴定"),
    (Procedure::ExpertReview, "专家评审"),
];

/// The Chinese name of a procedure.
pub fn procedure(p: Procedure) -> &'static str {
    PROCEDURES
        .iter()
        .find(|x| x.0 == p)
        .map_or("特别程序", |x| x.1)
}

/// Outcomes of a conclusion.
pub const OUTCOMES: &[(Outcome, &str)] = &[
    (Outcome::Approved, "准予许可"),
    (Outcome::ApprovedWithDeficiencies, "容缺准予"),
    (Outcome::Refused, "不予许可"),
];

/// The Chinese name of an outcome.
pub fn outcome(o: Outcome) -> &'static str {
    OUTCOMES.iter().find(|x| x.0 == o).map_or("", |x| x.1)
}

/// A limit unit in Chinese.
pub fn unit(u: LimitUnit) -> &'static str {
    match u {
        LimitUnit::NaturalDays => "自然日",
        LimitUnit::WorkingDays => "工作日",
        LimitUnit::NaturalHours => "小时",
        LimitUnit::WorkingHours => "工作小时",
    }
}

/// Every limit unit, for forms.
pub const UNITS: [LimitUnit; 4] = [
    LimitUnit::WorkingDays,
    LimitUnit::NaturalDays,
    LimitUnit::WorkingHours,
    LimitUnit::NaturalHours,
];

/// A time limit in Chinese (`10个工作日`, `即办`).
pub fn limit(l: TimeLimit) -> String {
    if l.amount == 0 {
        return "即办".into();
    }
    format!("{}个{}", l.amount, unit(l.unit))
}

/// Metered seconds in a unit, to one decimal (`2.5个工作日`).
pub fn used(seconds: i64, u: LimitUnit) -> String {
    let per = u.seconds().max(1) as f64;
    format!("{:.1}个{}", seconds as f64 / per, unit(u))
}

/// Where a catalogue item stands.
pub fn item_status(s: ItemStatus) -> &'static str {
    match s {
        ItemStatus::Draft => "草稿",
        ItemStatus::Approved => "审核通过待发布",
        ItemStatus::Returned => "退回修改",
        ItemStatus::Published => "已发布",
        ItemStatus::Suspended => "暂停实施",
        ItemStatus::Revoked => "已取消",
    }
}

/// Every item status, for filters.
pub const ITEM_STATUSES: [ItemStatus; 6] = [
    ItemStatus::Draft,
    ItemStatus::Approved,
    ItemStatus::Returned,
    ItemStatus::Published,
    ItemStatus::Suspended,
    ItemStatus::Revoked,
];

/// A review step, as a button.
pub fn review(a: ReviewAction) -> &'static str {
    match a {
        ReviewAction::Drafted => "起草",
        ReviewAction::Approved => "法制审核通过",
        ReviewAction::Returned => "退回修改",
        ReviewAction::Published => "发布",
        ReviewAction::Suspended => "暂停实施",
        ReviewAction::Revoked => "取消事项",
    }
}

/// The review steps a form can offer.
pub const REVIEW_ACTIONS: [ReviewAction; 5] = [
    ReviewAction::Approved,
    ReviewAction::Returned,
    ReviewAction::Published,
    ReviewAction::Suspended,
    ReviewAction::Revoked,
];

/// A supervision rule.
pub fn rule(r: Rule) -> &'static str {
    match r {
        Rule::CaseTimeLimit => "办理时限",
        Rule::SpecialProcedure => "特别程序超期",
        Rule::PreAcceptance => "网上预受理超期",
        Rule::CertificateDelivery => "证照送达超期",
        Rule::ComplaintReply => "投诉咨询答复超期",
        Rule::Disclosure => "办件公开超时",
        Rule::Anomaly => "其他异常",
    }
}

/// A warning level.
pub fn card(c: Card) -> &'static str {
    match c {
        Card::Notice => "预警",
        Card::Yellow => "黄牌",
        Card::Red => "红牌",
    }
}

/// A time stamped while the clock of the node that stamped it was off its
/// parent's: `时钟慢 10 分钟，时间存疑`.
pub fn clock_off(ahead_secs: i64) -> String {
    format!(
        "时钟{} {} 分钟，时间存疑",
        if ahead_secs > 0 { "快" } else { "慢" },
        ahead_secs.abs() / 60
    )
}

/// How an order was closed.
pub fn resolution(r: Resolution) -> &'static str {
    match r {
        Resolution::Rectified => "整改到位",
        Resolution::NotRectified => "未整改",
        Resolution::Withdrawn => "撤销督办",
    }
}

/// Where an order stands.
pub fn order_state(s: OrderState) -> &'static str {
    match s {
        OrderState::Open => "待反馈",
        OrderState::Replied => "已反馈",
        OrderState::Appealed => "申诉待裁决",
        OrderState::Closed => "已办结",
    }
}

/// The issuer's decision on an appeal.
pub fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Upheld => "维持亮牌",
        Verdict::Revoked => "撤销亮牌",
    }
}

/// How an application arrived.
pub fn channel(c: &str) -> &str {
    match c {
        "window" => "窗口",
        "online" => "网上",
        "mobile" => "移动端",
        "mail" => "邮寄",
        "agent" => "代办",
        other => other,
    }
}

/// Identity document types offered at the window; the first two carry a
/// check digit.
pub const ID_TYPES: &[&str] = &[
    "身份证",
    "统一社会信用代码",
    "护照",
    "港澳居民来往内地通行证",
    "台湾居民来往大陆通行证",
    "其他证件",
];

/// What is wrong with an identity number, in words a clerk can act on.
pub fn id_number(e: &IdNumberError) -> String {
    match e {
        IdNumberError::Form(what, _) if what.contains("resident") => {
            "身份证号码应为18位：前17位为数字，最后一位为数字或X。请核对证件后重新输入。".into()
        }
        IdNumberError::Form(..) => {
            "统一社会信用代码应为18位数字或大写字母（不含I、O、Z、S、V），第3至8位为行政区划代码。请核对营业执照后重新输入。".into()
        }
        IdNumberError::BirthDate(d) => {
            format!("身份证号码中的出生日期 {d} 不是有效日期。请核对证件后重新输入。")
        }
        IdNumberError::Check {
            kind,
            given,
            expected,
        } => {
            let what = if kind.contains("resident") {
                "身份证号码"
            } else {
                "统一社会信用代码"
            };
            format!(
                "{what}校验位不符（末位为 {given}，按前17位应为 {expected}），说明有字符输错。请逐位核对证件后重新输入。"
            )
        }
    }
}

/// A refusal as the console shows it: what to do, in Chinese, and the
/// API's code and English detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The message for the operator.
    pub zh: String,
    /// The stable code.
    pub code: String,
    /// The API's message.
    pub detail: String,
}

impl Refusal {
    /// The refusal for an API error, with a sentence of context for a
    /// refusal because of the record's state (`not_allowed`), if the page
    /// has a better one than the general text.
    pub fn of(e: &ApiError, not_allowed: Option<&str>) -> Refusal {
        let zh = match e.code.as_str() {
            "not_allowed" => not_allowed
                .unwrap_or("当前状态不允许这项操作（可能已有其他人办理）。页面已显示最新状态，请从列出的操作中选择。")
                .to_string(),
            "id_number" => "证件号码校验未通过：请逐位核对证件号码后重新输入。".into(),
            code => general(code).to_string(),
        };
        Refusal {
            zh,
            code: e.code.clone(),
            detail: e.message.clone(),
        }
    }

    /// A refusal the console makes itself (a form field it cannot read).
    pub fn local(zh: impl Into<String>, detail: impl Into<String>) -> Refusal {
        Refusal {
            zh: zh.into(),
            code: "invalid".into(),
            detail: detail.into(),
        }
    }
}

/// The general Chinese message of each stable error code.
pub fn general(code: &str) -> &'static str {
    match code {
        "bad_request" => "提交的内容格式不对。请刷新页面，检查填写的内容后重试。",
        "invalid" => {
            "填写的内容不符合要求（必填项为空、格式不对或超出长度）。请按下方说明改正后重新提交。"
        }
        "not_found" => {
            "找不到这条记录。请核对编号；下级上报的记录可能尚未同步到本中心，请稍后再查。"
        }
        "not_allowed" => "当前状态不允许这项操作。请刷新页面查看最新状态。",
        "exists" => "该编号已被使用。请换一个编号，或留空由系统自动编号。",
        "unauthorized" => "登录已失效。请重新登录。",
        "forbidden" => "您的账号没有这项操作所需的岗位权限。如确需办理，请联系系统管理员分配角色。",
        "csrf" => "页面已过期（安全校验未通过）。请刷新页面后重新提交。",
        "too_large" => "提交的内容过长。请精简后重新提交。",
        "too_many_attempts" => "登录失败次数过多，请稍后再试；如忘记密码，请联系系统管理员。",
        "unavailable" => "系统暂时无法保存（磁盘已满或不可写）。请稍后重试，并通知系统管理员。",
        "damaged" => "本机数据存储发现损坏。请停止办理并立即联系系统管理员。",
        "out_of_scope" => "该记录不属于本中心或下级单位，不能在此办理。",
        "not_running" => "节点未在运行，无法查看联网状态。",
        "restoring" => "本中心正在从上级恢复数据，恢复完成前不能办理（否则新办件编号会与上级已有的办件重复）。请稍候，进度见“联网”页。",
        _ => "系统内部错误，操作未完成。请联系系统管理员并提供下方的技术详情。",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stable_code_has_a_chinese_message() {
        for code in [
            "bad_request",
            "invalid",
            "not_found",
            "not_allowed",
            "exists",
            "unauthorized",
            "forbidden",
            "csrf",
            "too_large",
            "too_many_attempts",
            "unavailable",
            "damaged",
            "out_of_scope",
            "not_running",
            "restoring",
            "id_number",
        ] {
            let r = Refusal::of(&ApiError::new(400, code, "detail"), None);
            assert!(
                r.zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{code}: {}",
                r.zh
            );
            assert_ne!(r.zh, general("internal"), "{code}");
            assert_eq!(r.detail, "detail");
        }
    }

    #[test]
    fn a_wrong_check_digit_names_the_digit_expected() {
        let e = hallsync_model::idcheck::check_resident_id("110105194912310021").unwrap_err();
        assert!(id_number(&e).contains("应为 X"), "{}", id_number(&e));
    }

    #[test]
    fn every_event_kind_has_a_chinese_name() {
        for (name, zh) in EVENTS {
            assert_eq!(event(name), *zh);
        }
    }
}
