//! Operators: add, list, disable, set a password (administrators).

use std::collections::BTreeSet;

use hallsync_hall::operators::{OperatorInfo, Role};
use hallsync_model::Ts;
use serde::{Deserialize, Serialize};

use crate::{ApiError, Caller, Op, Service};

/// Adds an operator: `POST /api/v1/operators`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddOperator {
    /// Login name.
    pub login: String,
    /// The name recorded as the handler of what the operator writes.
    pub name: String,
    /// Roles.
    pub roles: BTreeSet<Role>,
    /// The initial password.
    pub password: String,
}

impl Op for AddOperator {
    type Out = OperatorInfo;
    const PATH: &'static str = "/operators";
    const WRITE: bool = true;
    const RECORDS: bool = false;
    fn role(&self) -> Option<Role> {
        Some(Role::Admin)
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let op =
            svc.hall()
                .add_operator(&self.login, &self.name, self.roles, &self.password, now)?;
        Ok(OperatorInfo::from(&op))
    }
}

/// Lists the operators: `GET /api/v1/operators`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListOperators {}

impl Op for ListOperators {
    type Out = Vec<OperatorInfo>;
    const PATH: &'static str = "/operators";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        Some(Role::Admin)
    }
    fn run(self, svc: &Service, _: &Caller, _: Ts) -> Result<Self::Out, ApiError> {
        Ok(svc
            .hall()
            .operators()?
            .iter()
            .map(OperatorInfo::from)
            .collect())
    }
}

/// Disables an operator, or enables one again: `POST
/// /api/v1/operators/disable`. A disabled operator's sessions end at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableOperator {
    /// Login name.
    pub login: String,
    /// `false` enables the operator again.
    #[serde(default = "yes")]
    pub disabled: bool,
}

fn yes() -> bool {
    true
}

impl Op for DisableOperator {
    type Out = OperatorInfo;
    const PATH: &'static str = "/operators/disable";
    const WRITE: bool = true;
    const RECORDS: bool = false;
    fn role(&self) -> Option<Role> {
        Some(Role::Admin)
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let op = svc
            .hall()
            .set_operator_disabled(&self.login, self.disabled, now)?;
        Ok(OperatorInfo::from(&op))
    }
}

/// Sets an operator's password: `POST /api/v1/operators/password`.
/// Sessions opened before end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// Login name.
    pub login: String,
    /// The new password.
    pub password: String,
}

impl Op for SetPassword {
    type Out = OperatorInfo;
    const PATH: &'static str = "/operators/password";
    const WRITE: bool = true;
    const RECORDS: bool = false;
    fn role(&self) -> Option<Role> {
        Some(Role::Admin)
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let op = svc
            .hall()
            .set_operator_password(&self.login, &self.password, now)?;
        Ok(OperatorInfo::from(&op))
    }
}
