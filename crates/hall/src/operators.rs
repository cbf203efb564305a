//! The hall's operators: who works at this node's console, in which roles.
//! Operators belong to one node: they are kept among its own records, never
//! replicated. Passwords are kept as argon2id hashes.

use std::collections::BTreeSet;
use std::fmt;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hallsync_model::{Level, Ts};
use serde::{Deserialize, Serialize};

use crate::{Hall, HallError};

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 窗口人员: accepts cases and records what happens to them; replies to
    /// orders addressed to the hall.
    Clerk,
    /// 法制审核: drafts, reviews and publishes catalogue items.
    Reviewer,
    /// 电子监察 (hubs only): issues and closes supervision orders.
    Supervisor,
    /// 系统管理员: operators, the calendar, raw documents.
    Admin,
}

/// Every role, in the order they are listed.
pub const ROLES: [Role; 4] = [Role::Clerk, Role::Reviewer, Role::Supervisor, Role::Admin];

impl Role {
    /// The name used on the command line and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "clerk",
            Role::Reviewer => "reviewer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// The name the console shows.
    pub fn label(self) -> &'static str {
        match self {
            Role::Clerk => "窗口人员",
            Role::Reviewer => "法制审核",
            Role::Supervisor => "电子监察",
            Role::Admin => "系统管理员",
        }
    }

    /// Parses an English or Chinese name.
    pub fn parse(s: &str) -> Option<Role> {
        ROLES
            .into_iter()
            .find(|r| r.as_str() == s.trim() || r.label() == s.trim())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// Login name (1-32 of `a-z 0-9 . _ -`).
    pub login: String,
    /// The name recorded as `by` on everything the operator writes.
    pub name: String,
    /// Roles.
    pub roles: BTreeSet<Role>,
    /// argon2id hash of the password (PHC string).
    pub password: String,
    /// A disabled operator cannot log in, and any session ends at once.
    pub disabled: bool,
    /// Bumped whenever the password changes or the operator is disabled:
    /// sessions opened before are no longer valid.
    pub generation: u64,
    /// When it last changed.
    pub changed: Ts,
}

/// An operator as listed (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorInfo {
    /// Login name.
    pub login: String,
    /// The name recorded as `by`.
    pub name: String,
    /// Roles.
    pub roles: BTreeSet<Role>,
    /// Whether the operator is disabled.
    pub disabled: bool,
    /// When it last changed.
    pub changed: Ts,
}

impl From<&Operator> for OperatorInfo {
    fn from(o: &Operator) -> OperatorInfo {
        OperatorInfo {
            login: o.login.clone(),
            name: o.name.clone(),
            roles: o.roles.clone(),
            disabled: o.disabled,
            changed: o.changed,
        }
    }
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted (argon2 takes any length; this bounds work).
pub const MAX_PASSWORD: usize = 128;

const KEY: &[u8] = b"op:";

fn key(login: &str) -> Vec<u8> {
    [KEY, login.as_bytes()].concat()
}

fn bad(reason: impl Into<String>) -> HallError {
    HallError::BadInput(reason.into())
}

fn check_login(login: &str) -> Result<(), HallError> {
    let ok = !login.is_empty()
        && login.len() <= 32
        && login.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if !ok {
        return Err(bad(format!(
            "login {:?} must be 1-32 of a-z 0-9 . _ -",
            login.chars().take(40).collect::<String>()
        )));
    }
    Ok(())
}

/// An argon2id hash of a password, after checking its length.
pub fn hash_password(password: &str) -> Result<String, HallError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(bad(format!(
            "a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| bad(format!("could not hash the password: {e}")))
}

impl Operator {
    /// Whether `password` is this operator's.
    pub fn verify(&self, password: &str) -> bool {
        password.chars().count() <= MAX_PASSWORD
            && PasswordHash::new(&self.password).is_ok_and(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
    }
}

impl Hall {
    fn put_operator(&self, op: &Operator) -> Result<(), HallError> {
        let value = serde_json::to_vec(op).map_err(|e| bad(e.to_string()))?;
        Ok(self
            .store
            .put_local(&[(key(&op.login).as_slice(), Some(value.as_slice()))])?)
    }

    /// Every operator, by login.
    pub fn operators(&self) -> Result<Vec<Operator>, HallError> {
        self.store
            .local(KEY)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v).map_err(|e| {
                    HallError::Store(hallsync_store::StoreError::Corrupt {
                        key: String::from_utf8_lossy(&k).into_owned(),
                        reason: e.to_string(),
                    })
                })
            })
            .collect()
    }

    /// One operator, if there is one by that login.
    pub fn operator(&self, login: &str) -> Result<Option<Operator>, HallError> {
        Ok(self.operators()?.into_iter().find(|o| o.login == login))
    }

    /// Adds an operator.
    pub fn add_operator(
        &self,
        login: &str,
        name: &str,
        roles: BTreeSet<Role>,
        password: &str,
        now: Ts,
    ) -> Result<Operator, HallError> {
        check_login(login)?;
        hallsync_model::valid::required("name", name, 50)?;
        if roles.is_empty() {
            return Err(bad("an operator needs at least one role"));
        }
        if roles.contains(&Role::Supervisor) && self.node.level == Level::Township {
            return Err(bad(
                "supervisor is a role of the county and city hubs, which issue supervision orders",
            ));
        }
        if self.operator(login)?.is_some() {
            return Err(bad(format!("there is already an operator {login}")));
        }
        let op = Operator {
            login: login.to_string(),
            name: name.trim().to_string(),
            roles,
            password: hash_password(password)?,
            disabled: false,
            generation: 1,
            changed: now,
        };
        self.put_operator(&op)?;
        Ok(op)
    }

    fn change_operator(
        &self,
        login: &str,
        now: Ts,
        change: impl FnOnce(&mut Operator) -> Result<(), HallError>,
    ) -> Result<Operator, HallError> {
        let mut op = self.operator(login)?.ok_or_else(|| {
            bad(format!(
                "no operator {login} (see `hallsync operator list`)"
            ))
        })?;
        change(&mut op)?;
        op.generation += 1;
        op.changed = now;
        self.put_operator(&op)?;
        Ok(op)
    }

    /// Disables (or enables again) an operator; a disabled one's sessions
    /// end at once.
    pub fn set_operator_disabled(
        &self,
        login: &str,
        disabled: bool,
        now: Ts,
    ) -> Result<Operator, HallError> {
        self.change_operator(login, now, |op| {
            op.disabled = disabled;
            Ok(())
        })
    }

    /// Sets an operator's password; sessions opened before end.
    pub fn set_operator_password(
        &self,
        login: &str,
        password: &str,
        now: Ts,
    ) -> Result<Operator, HallError> {
        let hash = hash_password(password)?;
        self.change_operator(login, now, |op| {
            op.password = hash;
            Ok(())
        })
    }
}
