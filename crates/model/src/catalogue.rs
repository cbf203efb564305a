//! Power catalogue items (行政权力事项, DOMAIN §2) and their review
//! workflow: an agency drafts, the legal office approves or returns, the
//! item is published, and later suspended, resumed or revoked. Every
//! transition is kept with who, when and why; the status is derived from
//! them, in (time, id) order, like a case's state.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::clock::TimeLimit;
use crate::ids::{LogId, NodeId};
use crate::time::{parse_date, Ts};
use crate::valid::{self, Invalid, MAX_ENTRIES, MAX_STR};

/// The twelve categories of power (seed 001) and public service, each with
/// its GB/T 39046 type code. The standard has no code for 非许可审批 and
/// 行政征用; they take the extension codes 11 and 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
    /// 行政许可, 01.
    Licensing,
    /// 行政处罚, 02.
    Penalty,
    /// 行政强制, 03.
    Coercion,
    /// 行政征收, 04.
    Levy,
    /// 行政给付, 05.
    Benefit,
    /// 行政检查, 06.
    Inspection,
    /// 行政确认, 07.
    Confirmation,
    /// 行政奖励, 08.
    Reward,
    /// 行政裁决, 09.
    Adjudication,
    /// 其他, 10.
    Other,
    /// 非许可审批, 11 (extension).
    NonLicensingApproval,
    /// 行政征用, 12 (extension).
    Requisition,
    /// 公共服务, 20.
    PublicService,
}

const CATEGORIES: [(Category, &str, &str); 13] = [
    (Category::Licensing, "01", "行政许可"),
    (Category::Penalty, "02", "行政处罚"),
    (Category::Coercion, "03", "行政强制"),
    (Category::Levy, "04", "行政征收"),
    (Category::Benefit, "05", "行政给付"),
    (Category::Inspection, "06", "行政检查"),
    (Category::Confirmation, "07", "行政确认"),
    (Category::Reward, "08", "行政奖励"),
    (Category::Adjudication, "09", "行政裁决"),
    (Category::Other, "10", "其他"),
    (Category::NonLicensingApproval, "11", "非许可审批"),
    (Category::Requisition, "12", "行政征用"),
    (Category::PublicService, "20", "公共服务"),
];

impl Category {
    /// The GB/T 39046 type code.
    pub fn code(self) -> &'static str {
        CATEGORIES
            .iter()
            .find(|c| c.0 == self)
            .map_or("10", |c| c.1)
    }

    /// The Chinese name.
    pub fn name(self) -> &'static str {
        CATEGORIES
            .iter()
            .find(|c| c.0 == self)
            .map_or("其他", |c| c.2)
    }

    /// Parses a type code (`01`, `1`) or a name (`行政许可`, `许可`).
    pub fn parse(s: &str) -> Option<Category> {
        let t = s.trim();
        let padded = if t.len() == 1 {
            format!("0{t}")
        } else {
            t.to_string()
        };
        CATEGORIES
            .iter()
            .find(|c| c.1 == padded || c.2 == t || c.2.trim_start_matches("行政") == t)
            .map(|c| c.0)
    }

    /// Whether decisions of this category are disclosed within 24 hours of
    /// the decision (penalty, coercion, levy) rather than 12 hours after
    /// acceptance (DOMAIN §4).
    pub fn discloses_decision(self) -> bool {
        matches!(
            self,
            Category::Penalty | Category::Coercion | Category::Levy
        )
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

/// How a case under the item is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseType {
    /// 即办件: concluded on the spot.
    Immediate,
    /// 承诺件: concluded within the committed limit.
    Committed,
    /// 上报件: accepted here, decided by a higher level.
    ForwardedUp,
    /// 并联件: several departments in parallel.
    Parallel,
}

impl CaseType {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseType::Immediate => "immediate",
            CaseType::Committed => "committed",
            CaseType::ForwardedUp => "forwarded_up",
            CaseType::Parallel => "parallel",
        }
    }

    /// Parses a stored name or the Chinese term.
    pub fn parse(s: &str) -> Option<CaseType> {
        match s.trim() {
            "immediate" | "即办件" | "即办" => Some(CaseType::Immediate),
            "committed" | "承诺件" | "承诺" => Some(CaseType::Committed),
            "forwarded_up" | "上报件" | "上报" => Some(CaseType::ForwardedUp),
            "parallel" | "并联件" | "并联" => Some(CaseType::Parallel),
            _ => None,
        }
    }
}

/// Whether and how cases under the item are disclosed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disclosure {
    /// Published online (主动公开).
    Public,
    /// Applicant only (依申请公开); filed with supervision.
    OnRequest,
    /// Not published (涉密/不予公开); must be filed with supervision.
    Confidential,
}

impl Disclosure {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Disclosure::Public => "public",
            Disclosure::OnRequest => "on_request",
            Disclosure::Confidential => "confidential",
        }
    }

    /// Parses a stored name or the Chinese term.
    pub fn parse(s: &str) -> Option<Disclosure> {
        match s.trim() {
            "public" | "主动公开" | "公开" | "" => Some(Disclosure::Public),
            "on_request" | "依申请公开" => Some(Disclosure::OnRequest),
            "confidential" | "不予公开" | "涉密" | "不公开" => {
                Some(Disclosure::Confidential)
            }
            _ => None,
        }
    }
}

/// Form in which a material is handed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialForm {
    /// 原件.
    Original,
    /// 复印件.
    Copy,
    /// 原件及复印件.
    Both,
}

impl MaterialForm {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MaterialForm::Original => "original",
            MaterialForm::Copy => "copy",
            MaterialForm::Both => "both",
        }
    }

    /// Parses a stored name or the Chinese term.
    pub fn parse(s: &str) -> Option<MaterialForm> {
        match s.trim() {
            "original" | "原件" => Some(MaterialForm::Original),
            "copy" | "复印件" => Some(MaterialForm::Copy),
            "both" | "原件及复印件" | "原件和复印件" => Some(MaterialForm::Both),
            _ => None,
        }
    }
}

/// A required material (申请材料).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    /// Name of the material.
    pub name: String,
    /// Original, copy or both.
    pub form: MaterialForm,
    /// Whether it is mandatory.
    pub mandatory: bool,
}

/// A fee the item allows (收费项目).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fee {
    /// Name of the fee.
    pub name: String,
    /// Standard, as published (e.g. "10元/件").
    pub standard: String,
    /// Legal basis of the fee.
    pub basis: String,
}

/// One tier of a penalty discretion benchmark (自由裁量基准).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscretionTier {
    /// The facts and circumstances of the tier.
    pub facts: String,
    /// The penalty range allowed for it.
    pub range: String,
}

/// The editable content of an item: the fields of GB/T 39046 table 4 that a
/// hall needs. The version, status and review history live beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemContent {
    /// 事项名称.
    pub name: String,
    /// 基本编码 (≤ 10 characters).
    pub basic_code: String,
    /// 实施编码 (≤ 24 characters); the item's key.
    pub impl_code: String,
    /// 权力类别.
    pub category: Category,
    /// 设定依据.
    pub legal_basis: String,
    /// 行使层级: 1 national … 4 county, 5 township, 6 village, 7 tiered.
    pub exercise_level: u8,
    /// 实施主体.
    pub agency: String,
    /// 实施主体编码 (18-character unified social credit code), may be empty.
    pub agency_code: String,
    /// 承办机构.
    pub office: String,
    /// 联办机构 (parallel approval).
    pub co_departments: Vec<String>,
    /// 法定时限.
    pub statutory_limit: TimeLimit,
    /// 承诺时限.
    pub committed_limit: TimeLimit,
    /// 办件类型.
    pub case_type: CaseType,
    /// 受理条件.
    pub conditions: String,
    /// 申请材料.
    pub materials: Vec<Material>,
    /// 办理流程 step names.
    pub steps: Vec<String>,
    /// 收费.
    pub fees: Vec<Fee>,
    /// 咨询电话.
    pub consult_phone: String,
    /// 监督投诉电话.
    pub complaint_phone: String,
    /// 公开方式.
    pub disclosure: Disclosure,
    /// 自由裁量基准 (penalties).
    pub discretion: Vec<DiscretionTier>,
    /// 生效日期.
    pub effective: Option<NaiveDate>,
    /// 取消日期.
    pub cancelled: Option<NaiveDate>,
}

/// An item field that fails validation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field (column) at fault.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn field_err(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

fn code_ok(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl ItemContent {
    /// Checks the rules every item must satisfy.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(field_err("name", "must be 1-200 characters"));
        }
        if !code_ok(&self.basic_code, 10) {
            return Err(field_err(
                "basic_code",
                format!("{:?} must be 1-10 letters or digits", self.basic_code),
            ));
        }
        if !code_ok(&self.impl_code, 24) {
            return Err(field_err(
                "impl_code",
                format!("{:?} must be 1-24 letters or digits", self.impl_code),
            ));
        }
        if self.agency.trim().is_empty() {
            return Err(field_err("agency", "the implementing agency is required"));
        }
        if !self.agency_code.is_empty() && !code_ok(&self.agency_code, 18) {
            return Err(field_err(
                "agency_code",
                format!("{:?} is not an 18-character credit code", self.agency_code),
            ));
        }
        if !(1..=7).contains(&self.exercise_level) {
            return Err(field_err("exercise_level", "must be 1 to 7"));
        }
        let (s, c) = (self.statutory_limit, self.committed_limit);
        if s.unit == c.unit && c.amount > s.amount {
            return Err(field_err(
                "committed_limit",
                format!("{c} is longer than the statutory limit {s}"),
            ));
        }
        if let (Some(e), Some(x)) = (self.effective, self.cancelled) {
            if x < e {
                return Err(field_err("cancel_date", "is before the effective date"));
            }
        }
        self.check_bounds()
    }

    /// Every text and list within the limits every reader applies
    /// ([`crate::valid`]).
    fn check_bounds(&self) -> Result<(), FieldError> {
        let bounded = |field: &'static str, r: Result<(), Invalid>| {
            r.map_err(|e| field_err(field, e.to_string()))
        };
        for (field, value) in [
            ("legal_basis", &self.legal_basis),
            ("agency", &self.agency),
            ("office", &self.office),
            ("conditions", &self.conditions),
            ("consult_phone", &self.consult_phone),
            ("complaint_phone", &self.complaint_phone),
        ] {
            bounded(field, valid::text(field, value, MAX_STR))?;
        }
        bounded(
            "co_departments",
            valid::texts("co_departments", &self.co_departments),
        )?;
        bounded("steps", valid::texts("steps", &self.steps))?;
        for (field, limit) in [
            ("statutory_limit", self.statutory_limit),
            ("committed_limit", self.committed_limit),
        ] {
            limit
                .validate()
                .map_err(|reason| field_err(field, reason))?;
        }
        let records = |field: &'static str, rows: Vec<Vec<(&'static str, &str)>>| {
            bounded(field, valid::entries(field, rows.len(), MAX_ENTRIES))?;
            for (i, row) in rows.iter().enumerate() {
                for (name, value) in row {
                    bounded(
                        field,
                        valid::text(&format!("{field}[{i}].{name}"), value, MAX_STR),
                    )?;
                }
            }
            Ok(())
        };
        records(
            "materials",
            self.materials
                .iter()
                .map(|m| vec![("name", m.name.as_str())])
                .collect(),
        )?;
        records(
            "fees",
            self.fees
                .iter()
                .map(|f| {
                    vec![
                        ("name", f.name.as_str()),
                        ("standard", f.standard.as_str()),
                        ("basis", f.basis.as_str()),
                    ]
                })
                .collect(),
        )?;
        records(
            "discretion",
            self.discretion
                .iter()
                .map(|d| vec![("facts", d.facts.as_str()), ("range", d.range.as_str())])
                .collect(),
        )
    }

    /// Builds an item from a spreadsheet row, given as `(column, cell)`
    /// pairs. Column names may be the Chinese headings of published lists
    /// or the English field names; see [`COLUMNS`].
    pub fn from_row<'a>(
        cells: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ItemContent, FieldError> {
        let mut by_field: BTreeMap<&'static str, &str> = BTreeMap::new();
        for (head, cell) in cells {
            if let Some(field) = column_field(head) {
                by_field.insert(field, cell.trim());
            }
        }
        let get = |f: &'static str| by_field.get(f).copied().unwrap_or("");
        let required = |f: &'static str| {
            let v = get(f);
            if v.is_empty() {
                Err(field_err(f, "is empty"))
            } else {
                Ok(v)
            }
        };
        let limit = |f: &'static str| {
            TimeLimit::parse(required(f)?).map_err(|e| field_err(f, e.to_string()))
        };
        let date = |f: &'static str| match get(f) {
            "" => Ok(None),
            v => parse_date(v)
                .map(Some)
                .map_err(|_| field_err(f, format!("{v:?} is not a valid date"))),
        };
        let category = required("category")?;
        let item = ItemContent {
            name: required("name")?.to_string(),
            basic_code: required("basic_code")?.to_string(),
            impl_code: required("impl_code")?.to_string(),
            category: Category::parse(category).ok_or_else(|| {
                field_err(
                    "category",
                    format!("{category:?} is not one of the 12 categories or a GB/T 39046 code"),
                )
            })?,
            legal_basis: get("legal_basis").to_string(),
            exercise_level: match get("exercise_level") {
                "" => 5,
                v => parse_exercise_level(v)
                    .ok_or_else(|| field_err("exercise_level", format!("{v:?} is not 1-7")))?,
            },
            agency: required("agency")?.to_string(),
            agency_code: get("agency_code").to_string(),
            office: get("office").to_string(),
            co_departments: split_list(get("co_departments")),
            statutory_limit: limit("statutory_limit")?,
            committed_limit: limit("committed_limit")?,
            case_type: match get("case_type") {
                "" => CaseType::Committed,
                v => CaseType::parse(v).ok_or_else(|| {
                    field_err(
                        "case_type",
                        format!("{v:?} is not 即办件, 承诺件, 上报件 or 并联件"),
                    )
                })?,
            },
            conditions: get("conditions").to_string(),
            materials: parse_materials(get("materials"))?,
            steps: get("steps")
                .split(['→', '>', ';', '；'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            fees: parse_fees(get("fees"))?,
            consult_phone: get("consult_phone").to_string(),
            complaint_phone: get("complaint_phone").to_string(),
            disclosure: Disclosure::parse(get("disclosure")).ok_or_else(|| {
                field_err(
                    "disclosure",
                    format!(
                        "{:?} is not 主动公开, 依申请公开 or 不予公开",
                        get("disclosure")
                    ),
                )
            })?,
            discretion: parse_pairs(get("discretion"), "discretion")?
                .into_iter()
                .map(|(facts, range)| DiscretionTier { facts, range })
                .collect(),
            effective: date("effective")?,
            cancelled: date("cancel_date")?,
        };
        item.validate()?;
        Ok(item)
    }
}

/// Spreadsheet columns: the field, then the headings that name it.
pub const COLUMNS: &[(&str, &[&str])] = &[
    ("name", &["事项名称", "名称"]),
    ("basic_code", &["基本编码"]),
    ("impl_code", &["实施编码"]),
    ("category", &["权力类别", "事项类型", "类别"]),
    ("legal_basis", &["设定依据"]),
    ("exercise_level", &["行使层级"]),
    ("agency", &["实施主体"]),
    ("agency_code", &["实施主体编码"]),
    ("office", &["承办机构"]),
    ("co_departments", &["联办机构"]),
    ("statutory_limit", &["法定时限", "法定办结时限"]),
    ("committed_limit", &["承诺时限", "承诺办结时限"]),
    ("case_type", &["办件类型"]),
    ("conditions", &["受理条件"]),
    ("materials", &["申请材料"]),
    ("steps", &["办理流程"]),
    ("fees", &["收费标准", "收费"]),
    ("consult_phone", &["咨询电话"]),
    ("complaint_phone", &["监督投诉电话", "投诉电话"]),
    ("disclosure", &["公开方式"]),
    ("discretion", &["自由裁量基准", "裁量基准"]),
    ("effective", &["生效日期"]),
    ("cancel_date", &["取消日期"]),
];

fn column_field(head: &str) -> Option<&'static str> {
    let h = head.trim().trim_start_matches('\u{feff}');
    COLUMNS
        .iter()
        .find(|(f, names)| *f == h || names.contains(&h))
        .map(|(f, _)| *f)
}

/// Whether a set of headings has the columns an item needs; returns the
/// missing required fields.
pub fn missing_columns<'a>(heads: impl IntoIterator<Item = &'a str>) -> Vec<&'static str> {
    let present: Vec<&str> = heads.into_iter().filter_map(column_field).collect();
    REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|f| !present.contains(f))
        .collect()
}

const REQUIRED_COLUMNS: &[&str] = &[
    "name",
    "basic_code",
    "impl_code",
    "category",
    "agency",
    "statutory_limit",
    "committed_limit",
];

fn parse_exercise_level(v: &str) -> Option<u8> {
    let n = match v {
        "国家级" => 1,
        "省级" => 2,
        "市级" => 3,
        "县级" => 4,
        "乡级" | "镇级" | "乡镇级" | "街道级" => 5,
        "村级" => 6,
        "分级" => 7,
        other => other.parse().ok()?,
    };
    (1..=7).contains(&n).then_some(n)
}

fn split_list(s: &str) -> Vec<String> {
    s.split(['、', ';', '；', ',', '，', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn parse_pairs(s: &str, field: &'static str) -> Result<Vec<(String, String)>, FieldError> {
    split_entries(s)
        .map(|e| {
            let mut p = e.split('|').map(str::trim);
            match (p.next(), p.next(), p.next()) {
                (Some(a), Some(b), None) if !a.is_empty() => Ok((a.into(), b.into())),
                _ => Err(field_err(field, format!("{e:?} is not 'facts|range'"))),
            }
        })
        .collect()
}

fn split_entries(s: &str) -> impl Iterator<Item = &str> {
    s.split([';', '；', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

fn parse_materials(s: &str) -> Result<Vec<Material>, FieldError> {
    split_entries(s)
        .map(|e| {
            let parts: Vec<&str> = e.split('|').map(str::trim).collect();
            let bad = || {
                field_err(
                    "materials",
                    format!("{e:?} is not 'name|原件/复印件/原件及复印件|必需/可选'"),
                )
            };
            let name = parts.first().filter(|n| !n.is_empty()).ok_or_else(bad)?;
            let form = match parts.get(1) {
                None => MaterialForm::Original,
                Some(f) => MaterialForm::parse(f).ok_or_else(bad)?,
            };
            let mandatory = match parts.get(2).copied() {
                None | Some("必需") | Some("必要") | Some("是") | Some("mandatory") => true,
                Some("可选") | Some("否") | Some("optional") => false,
                Some(_) => return Err(bad()),
            };
            if parts.len() > 3 {
                return Err(bad());
            }
            Ok(Material {
                name: (*name).to_string(),
                form,
                mandatory,
            })
        })
        .collect()
}

fn parse_fees(s: &str) -> Result<Vec<Fee>, FieldError> {
    if matches!(s.trim(), "不收费" | "无" | "免费") {
        return Ok(Vec::new());
    }
    split_entries(s)
        .map(|e| {
            let p: Vec<&str> = e.split('|').map(str::trim).collect();
            match p.as_slice() {
                [name, standard, basis] if !name.is_empty() => Ok(Fee {
                    name: (*name).into(),
                    standard: (*standard).into(),
                    basis: (*basis).into(),
                }),
                _ => Err(field_err(
                    "fees",
                    format!("{e:?} is not 'name|standard|basis'"),
                )),
            }
        })
        .collect()
}

/// Where an item stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Being drafted by the agency (or revised after a return).
    Draft,
    /// Approved by legal review, not yet published.
    Approved,
    /// Sent back by legal review.
    Returned,
    /// Published and in force: cases may be accepted.
    Published,
    /// Temporarily not exercised.
    Suspended,
    /// Revoked for good.
    Revoked,
}

impl ItemStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Draft => "draft",
            ItemStatus::Approved => "approved",
            ItemStatus::Returned => "returned",
            ItemStatus::Published => "published",
            ItemStatus::Suspended => "suspended",
            ItemStatus::Revoked => "revoked",
        }
    }

    /// The GB/T 39046 status: active, suspended or revoked, or `None` while
    /// not yet in force.
    pub fn gb_status(self) -> Option<&'static str> {
        match self {
            ItemStatus::Published => Some("active"),
            ItemStatus::Suspended => Some("suspended"),
            ItemStatus::Revoked => Some("revoked"),
            _ => None,
        }
    }
}

impl fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A workflow transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    /// A new version was drafted (creation or revision of the content).
    Drafted,
    /// Legal review approved the version.
    Approved,
    /// Legal review returned it.
    Returned,
    /// Published (also: resumed after a suspension).
    Published,
    /// Suspended.
    Suspended,
    /// Revoked.
    Revoked,
}

impl ReviewAction {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewAction::Drafted => "drafted",
            ReviewAction::Approved => "approved",
            ReviewAction::Returned => "returned",
            ReviewAction::Published => "published",
            ReviewAction::Suspended => "suspended",
            ReviewAction::Revoked => "revoked",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<ReviewAction> {
        [
            ReviewAction::Drafted,
            ReviewAction::Approved,
            ReviewAction::Returned,
            ReviewAction::Published,
            ReviewAction::Suspended,
            ReviewAction::Revoked,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }

    /// The status this action leads to from `from`, or `None` if it is not
    /// allowed there.
    pub fn apply(self, from: ItemStatus) -> Option<ItemStatus> {
        use ItemStatus as S;
        match (self, from) {
            (ReviewAction::Drafted, S::Revoked) => None,
            (ReviewAction::Drafted, _) => Some(S::Draft),
            (ReviewAction::Approved, S::Draft) => Some(S::Approved),
            (ReviewAction::Returned, S::Draft | S::Approved) => Some(S::Returned),
            (ReviewAction::Published, S::Approved | S::Suspended) => Some(S::Published),
            (ReviewAction::Suspended, S::Published) => Some(S::Suspended),
            (ReviewAction::Revoked, S::Published | S::Suspended) => Some(S::Revoked),
            _ => None,
        }
    }

    /// Whether the action needs a stated reason.
    pub fn needs_reason(self) -> bool {
        matches!(
            self,
            ReviewAction::Returned | ReviewAction::Suspended | ReviewAction::Revoked
        )
    }
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRecord {
    /// Unique id of the record within the item (`node.actor.n`).
    pub id: LogId,
    /// What happened.
    pub action: ReviewAction,
    /// Item version it applies to.
    pub version: u32,
    /// Who did it.
    pub by: String,
    /// When.
    pub at: Ts,
    /// Why (required to return, suspend or revoke).
    pub reason: String,
    /// The node that recorded it.
    pub node: NodeId,
}

/// A catalogue item as stored: content, version and review history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The editable fields.
    pub content: ItemContent,
    /// Current version; each revision of the content adds one.
    pub version: u32,
    /// All transitions, in any order.
    pub history: Vec<ReviewRecord>,
}

/// A transition refused by the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WorkflowError {
    /// The action is not allowed in the current status.
    #[error("cannot mark the item {action} while it is {status}")]
    NotAllowed {
        /// Attempted action.
        action: &'static str,
        /// Current status.
        status: ItemStatus,
    },
    /// The action needs a reason.
    #[error("a reason is required to mark the item {0}")]
    ReasonRequired(&'static str),
    /// The reviewer or publisher is missing.
    #[error("who is acting must be named")]
    ActorRequired,
}

/// The derived workflow state of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemView {
    /// Current status.
    pub status: ItemStatus,
    /// When the current version was first published, if it was.
    pub published_at: Option<Ts>,
    /// Transitions in the merged log that were not valid where they fell,
    /// in the order they were considered.
    pub conflicts: Vec<String>,
}

impl Item {
    /// Checks the whole record (see [`crate::valid`]): the content and each
    /// review record, whose key must name the node that wrote it.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.content
            .validate()
            .map_err(|e| Invalid::new(e.field, e.reason))?;
        valid::entries("review", self.history.len(), MAX_ENTRIES)?;
        for r in &self.history {
            let here = |e: Invalid| e.within(&format!("review.{}", r.id));
            if r.id.node() != &r.node {
                return Err(here(Invalid::new(
                    "node",
                    format!("{} is not the node {} the key names", r.node, r.id.node()),
                )));
            }
            valid::text("by", &r.by, MAX_STR).map_err(here)?;
            valid::text("reason", &r.reason, MAX_STR).map_err(here)?;
        }
        Ok(())
    }

    /// The history in the canonical (time, id) order.
    pub fn ordered_history(&self) -> Vec<&ReviewRecord> {
        let mut h: Vec<&ReviewRecord> = self.history.iter().collect();
        h.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        h
    }

    /// Derives the status by replaying the history in (time, id) order.
    /// Transitions that do not fit where they fall are listed as
    /// conflicts, never silently dropped.
    pub fn view(&self) -> ItemView {
        let mut status = ItemStatus::Draft;
        let mut published_at = None;
        let mut conflicts = Vec::new();
        for r in self.ordered_history() {
            match r.action.apply(status) {
                Some(next) => {
                    if next == ItemStatus::Published && published_at.is_none() {
                        published_at = Some(r.at);
                    }
                    if r.action == ReviewAction::Drafted {
                        published_at = None;
                    }
                    status = next;
                }
                None => conflicts.push(format!(
                    "{} by {} at {} does not follow {}",
                    r.action.as_str(),
                    r.by,
                    r.at,
                    status
                )),
            }
        }
        ItemView {
            status,
            published_at,
            conflicts,
        }
    }

    /// Checks that `action` may be recorded now.
    pub fn check(&self, action: ReviewAction, by: &str, reason: &str) -> Result<(), WorkflowError> {
        if by.trim().is_empty() {
            return Err(WorkflowError::ActorRequired);
        }
        if action.needs_reason() && reason.trim().is_empty() {
            return Err(WorkflowError::ReasonRequired(action.as_str()));
        }
        let status = self.view().status;
        action
            .apply(status)
            .map(|_| ())
            .ok_or(WorkflowError::NotAllowed {
                action: action.as_str(),
                status,
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_content() -> ItemContent {
        ItemContent::from_row([
            ("事项名称", "农村村民宅基地审批"),
            ("基本编码", "0100123000"),
            ("实施编码", "11140212MB01234564000"),
            ("权力类别", "行政许可"),
            ("实施主体", "某镇人民政府"),
            ("法定时限", "20个工作日"),
            ("承诺时限", "10个工作日"),
            ("申请材料", "身份证|原件及复印件|必需；申请表|原件|必需"),
            ("办理流程", "受理→审核→决定→办结"),
            ("收费标准", "不收费"),
        ])
        .unwrap()
    }

    fn rec(action: ReviewAction, at: i64, n: u64) -> ReviewRecord {
        let id = LogId::new(&NodeId::parse("n1").unwrap(), "a", n).unwrap();
        ReviewRecord {
            node: id.node().clone(),
            id,
            action,
            version: 1,
            by: "法制办".into(),
            at: Ts(at),
            reason: "r".into(),
        }
    }

    #[test]
    fn categories_map_to_gb_codes() {
        assert_eq!(Category::parse("行政许可"), Some(Category::Licensing));
        assert_eq!(Category::parse("许可"), Some(Category::Licensing));
        assert_eq!(Category::parse("2"), Some(Category::Penalty));
        assert_eq!(Category::parse("非许可审批").unwrap().code(), "11");
        assert_eq!(Category::parse("行政征用").unwrap().code(), "12");
        assert_eq!(Category::Reward.code(), "08");
        assert_eq!(Category::parse("行政摊派"), None);
        assert_eq!(CATEGORIES.len(), 13);
    }

    #[test]
    fn rows_parse_and_bad_rows_name_the_field() {
        let item = sample_content();
        assert_eq!(item.materials.len(), 2);
        assert_eq!(item.steps, vec!["受理", "审核", "决定", "办结"]);
        assert!(item.fees.is_empty());
        let bad = ItemContent::from_row([
            ("事项名称", "x"),
            ("基本编码", "01"),
            ("实施编码", "A1"),
            ("权力类别", "行政许可"),
            ("实施主体", "局"),
            ("法定时限", "20个工作日"),
            ("承诺时限", "30个工作日"),
        ])
        .unwrap_err();
        assert_eq!(bad.field, "committed_limit");
        let bad = ItemContent::from_row([("事项名称", "x")]).unwrap_err();
        assert_eq!(bad.field, "category");
        assert_eq!(
            missing_columns(["事项名称", "实施编码"]),
            vec![
                "basic_code",
                "category",
                "agency",
                "statutory_limit",
                "committed_limit"
            ]
        );
    }

    #[test]
    fn review_workflow() {
        let mut item = Item {
            content: sample_content(),
            version: 1,
            history: vec![rec(ReviewAction::Drafted, 1, 1)],
        };
        assert!(item.check(ReviewAction::Published, "x", "").is_err());
        assert!(matches!(
            item.check(ReviewAction::Returned, "x", " "),
            Err(WorkflowError::ReasonRequired(_))
        ));
        item.history.push(rec(ReviewAction::Returned, 2, 2));
        item.history.push(rec(ReviewAction::Drafted, 3, 3));
        item.history.push(rec(ReviewAction::Approved, 4, 4));
        item.history.push(rec(ReviewAction::Published, 5, 5));
        let v = item.view();
        assert_eq!(v.status, ItemStatus::Published);
        assert_eq!(v.published_at, Some(Ts(5)));
        item.history.push(rec(ReviewAction::Suspended, 6, 6));
        item.history.push(rec(ReviewAction::Published, 7, 7));
        item.history.push(rec(ReviewAction::Revoked, 8, 8));
        assert_eq!(item.view().status, ItemStatus::Revoked);
        assert!(item.check(ReviewAction::Drafted, "x", "").is_err());
        // A concurrent second approval is a conflict, not a silent overwrite.
        item.history.push(rec(ReviewAction::Approved, 9, 9));
        assert_eq!(item.view().conflicts.len(), 1);
    }
}
