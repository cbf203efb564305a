//! Who is asking: the machine's administrator (the command line, with the
//! token the node writes where only its owner can read it), or an operator
//! logged in at the console (a session cookie, HttpOnly and SameSite, and
//! for every write the session's CSRF token in a header or form field).
//! Logins are throttled per login name and per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use hallsync_api::{ApiError, Caller};
use hallsync_hall::operators::OperatorInfo;
use hallsync_hall::Hall;

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// And after this long whatever happens (a working day and a half).
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// Failed logins allowed before each further attempt must wait.
pub const FREE_FAILURES: u32 = 4;
/// Failed logins are forgotten after this long.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);
/// The longest wait imposed between attempts.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Most sessions held at once (a bound on what logins can make it keep).
const MAX_SESSIONS: usize = 10_000;
/// Most login names and addresses whose failures are remembered.
const MAX_FAILURES: usize = 100_000;

/// The header a write carries its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The header a local administrator may give the time in (rehearsals).
pub const NOW_HEADER: &str = "x-hallsync-now";

#[derive(Debug)]
struct Session {
    login: String,
    generation: u64,
    csrf: String,
    started: Instant,
    seen: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// How long the next attempt must wait, if at all.
    fn wait(&self, now: Instant) -> Option<Duration> {
        if now.duration_since(self.last) > FAILURE_MEMORY || self.count <= FREE_FAILURES {
            return None;
        }
        let over = self.count - FREE_FAILURES;
        let wait = Duration::from_secs(u64::from(over * over)).min(MAX_WAIT);
        let passed = now.duration_since(self.last);
        (passed < wait).then(|| wait - passed)
    }
}

/// Sessions, login throttling and the administrator's token.
#[derive(Debug)]
pub struct Auth {
    token: String,
    cookie: String,
    secure: bool,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
}

/// A random token: 32 bytes, hex.
pub fn random_token() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares secrets in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(401, "unauthorized", message)
}

/// What a successful login gives: the operator and the session's CSRF token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoggedIn {
    /// The operator.
    pub operator: OperatorInfo,
    /// The token every write of this session carries.
    pub csrf: String,
}

impl Auth {
    /// Sessions for node `node` (its cookie is named after it, so a
    /// browser holding another node's session sends nothing this node
    /// knows), with the administrator's `token`; `secure` when served over
    /// HTTPS.
    pub fn new(node: &str, token: String, secure: bool) -> Auth {
        Auth {
            token,
            cookie: format!("hallsync_{}", node.replace('-', "_")),
            secure,
            sessions: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    fn session_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == self.cookie)
            .map(|(_, v)| v)
    }

    /// Whether the request carries the administrator's token.
    pub fn is_local(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| same(t.trim(), &self.token))
    }

    /// Who is asking. A write (`csrf`: the token it carries, from a header
    /// or a form field) by a session must carry that session's token. An
    /// operator disabled or whose password changed since the session began
    /// is out at once.
    pub fn caller(
        &self,
        hall: &Hall,
        headers: &HeaderMap,
        write: Option<Option<&str>>,
    ) -> Result<(Caller, Option<String>), ApiError> {
        if self.is_local(headers) {
            return Ok((Caller::Local, None));
        }
        let token = self
            .session_token(headers)
            .ok_or_else(|| unauthorized("log in first"))?;
        let (login, generation, csrf) = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let Some(s) = sessions.get_mut(token) else {
                return Err(unauthorized("the session has ended: log in again"));
            };
            if now.duration_since(s.seen) > IDLE || now.duration_since(s.started) > MAX_AGE {
                sessions.remove(token);
                return Err(unauthorized("the session has expired: log in again"));
            }
            s.seen = now;
            (s.login.clone(), s.generation, s.csrf.clone())
        };
        let operator = hall.operator(&login).map_err(ApiError::from)?;
        let current = operator.filter(|o| !o.disabled && o.generation == generation);
        let Some(operator) = current else {
            self.end(token);
            return Err(unauthorized(
                "this operator was disabled or given a new password: log in again",
            ));
        };
        if let Some(given) = write {
            if !given.is_some_and(|g| same(g, &csrf)) {
                return Err(ApiError::new(
                    403,
                    "csrf",
                    "the request lacks this session's CSRF token; reload the page and try again",
                ));
            }
        }
        Ok((Caller::Operator((&operator).into()), Some(csrf)))
    }

    /// Checks a login and opens a session; throttled per login name and
    /// per client address. Returns the session's cookie value and what the
    /// client learns.
    pub fn login(
        &self,
        hall: &Hall,
        login: &str,
        password: &str,
        from: IpAddr,
    ) -> Result<(String, LoggedIn), ApiError> {
        if login.len() > 64 || password.len() > 4 * hallsync_hall::operators::MAX_PASSWORD {
            return Err(unauthorized(
                "wrong login or password, or the operator is disabled",
            ));
        }
        let keys = [format!("login:{login}"), format!("addr:{from}")];
        let now = Instant::now();
        {
            let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(wait) = keys
                .iter()
                .filter_map(|k| failures.get(k).and_then(|f| f.wait(now)))
                .max()
            {
                return Err(ApiError::new(
                    429,
                    "too_many_attempts",
                    format!(
                        "too many failed logins: try again in {} s",
                        wait.as_secs().max(1)
                    ),
                ));
            }
        }
        let operator = hall
            .operator(login)
            .map_err(ApiError::from)?
            .filter(|o| !o.disabled && o.verify(password));
        let Some(operator) = operator else {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if failures.len() >= MAX_FAILURES {
                failures.retain(|_, f| now.duration_since(f.last) <= FAILURE_MEMORY);
            }
            for k in keys {
                let f = failures.entry(k).or_insert(Failures {
                    count: 0,
                    last: now,
                });
                if now.duration_since(f.last) > FAILURE_MEMORY {
                    f.count = 0;
                }
                f.count += 1;
                f.last = now;
            }
            tracing::warn!(login, %from, "a failed login");
            return Err(unauthorized(
                "wrong login or password, or the operator is disabled",
            ));
        };
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&keys[0]);
        let token = random_token();
        let csrf = random_token();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| {
                now.duration_since(s.seen) <= IDLE && now.duration_since(s.started) <= MAX_AGE
            });
        }
        if sessions.len() >= MAX_SESSIONS {
            return Err(ApiError::new(
                503,
                "unavailable",
                "too many sessions are open; try again later",
            ));
        }
        sessions.insert(
            token.clone(),
            Session {
                login: operator.login.clone(),
                generation: operator.generation,
                csrf: csrf.clone(),
                started: now,
                seen: now,
            },
        );
        tracing::info!(login = %operator.login, %from, "an operator logged in");
        Ok((
            token,
            LoggedIn {
                operator: (&operator).into(),
                csrf,
            },
        ))
    }

    /// Ends the session a request carries, if any.
    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(token) = self.session_token(headers) {
            self.end(token);
        }
    }

    fn end(&self, token: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    /// The `Set-Cookie` value that gives the browser a session, or (with
    /// `None`) takes it away.
    pub fn set_cookie(&self, token: Option<&str>) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let value = match token {
            Some(t) => format!(
                "{}={t}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                self.cookie,
                MAX_AGE.as_secs()
            ),
            None => format!(
                "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
                self.cookie
            ),
        };
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_logins_wait_longer_each_time_and_are_forgotten() {
        let t0 = Instant::now();
        let f = |count| Failures { count, last: t0 };
        assert_eq!(f(FREE_FAILURES).wait(t0), None);
        assert_eq!(f(FREE_FAILURES + 1).wait(t0), Some(Duration::from_secs(1)));
        assert_eq!(f(FREE_FAILURES + 3).wait(t0), Some(Duration::from_secs(9)));
        assert_eq!(f(1_000).wait(t0), Some(MAX_WAIT));
        let later = t0 + FAILURE_MEMORY + Duration::from_secs(1);
        assert_eq!(f(1_000).wait(later), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
