//! Who is asking: the machine's administrator (the command line, with the
//! token the node writes where only its owner can read it), or an operator
//! logged in at the console (a session cookie, HttpOnly and SameSite, and
//! for every write the session's CSRF token in a header or form field).
//! Logins are throttled per login name and per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use hallsync_api::{ApiError, Caller};
use hallsync_hall::operators::{Operator, OperatorInfo};
use hallsync_hall::Hall;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
/// Most sessions one operator holds; a new login ends the oldest.
pub const MAX_SESSIONS_PER_OPERATOR: usize = 32;
/// Most client addresses whose failures are remembered (login names are
/// remembered only for operators that exist, so they are bounded too).
const MAX_FAILURES: usize = 100_000;
/// Passwords checked at once: each check takes tens of milliseconds and
/// about 19 MiB (argon2id), so a burst of logins waits its turn instead of
/// taking the machine's memory, and cannot outrun the throttle.
const CONCURRENT_CHECKS: usize = 2;
/// Longest login name or password looked at.
const MAX_LOGIN: usize = 64;

/// The header a write carries its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The header a local administrator may give the time in (rehearsals).
pub const NOW_HEADER: &str = "x-hallsync-now";

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A session ends after this long without a request.
    pub idle: Duration,
    /// And after this long whatever happens.
    pub max_age: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            idle: IDLE,
            max_age: MAX_AGE,
        }
    }
}

#[derive(Debug)]
struct Session {
    /// The secret half of the cookie (the other half is the map key).
    secret: String,
    login: String,
    generation: u64,
    csrf: String,
    started: Instant,
    seen: Instant,
}

impl Session {
    fn live(&self, now: Instant, limits: Limits) -> bool {
        now.duration_since(self.seen) <= limits.idle
            && now.duration_since(self.started) <= limits.max_age
    }
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
        let over = u64::from(self.count - FREE_FAILURES);
        let wait = Duration::from_secs(over.saturating_mul(over)).min(MAX_WAIT);
        let passed = now.duration_since(self.last);
        (passed < wait).then(|| wait - passed)
    }

    fn record(entry: &mut Failures, now: Instant) {
        if now.duration_since(entry.last) > FAILURE_MEMORY {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }
}

/// Failed logins, per operator and per client address.
#[derive(Debug, Default)]
struct Throttle {
    logins: HashMap<String, Failures>,
    addresses: HashMap<IpAddr, Failures>,
}

impl Throttle {
    fn wait(&self, login: &str, from: IpAddr, now: Instant) -> Option<Duration> {
        let by_login = self.logins.get(login).and_then(|f| f.wait(now));
        let by_address = self.addresses.get(&from).and_then(|f| f.wait(now));
        by_login.max(by_address)
    }

    /// Records a failure; `login` only when such an operator exists.
    fn fail(&mut self, login: Option<&str>, from: IpAddr, now: Instant) {
        let fresh = Failures {
            count: 0,
            last: now,
        };
        if let Some(login) = login {
            Failures::record(self.logins.entry(login.to_string()).or_insert(fresh), now);
        }
        if !self.addresses.contains_key(&from) && self.addresses.len() >= MAX_FAILURES {
            self.addresses
                .retain(|_, f| now.duration_since(f.last) <= FAILURE_MEMORY);
            if self.addresses.len() >= MAX_FAILURES {
                // Every one is recent: forget the one left alone longest.
                if let Some(oldest) = self
                    .addresses
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(a, _)| *a)
                {
                    self.addresses.remove(&oldest);
                }
            }
        }
        Failures::record(self.addresses.entry(from).or_insert(fresh), now);
    }
}

/// The address failures are counted against: an IPv6 client is counted by
/// its /64, which one machine is usually given whole.
fn throttled_address(from: IpAddr) -> IpAddr {
    match from {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
        v4 => v4,
    }
}

/// Sessions, login throttling and the administrator's token.
#[derive(Debug)]
pub struct Auth {
    token: String,
    cookie: String,
    secure: bool,
    limits: Limits,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<Throttle>,
    checks: Arc<Semaphore>,
}

/// A random token: 32 bytes, hex.
pub fn random_token() -> String {
    hex(&rand::random::<[u8; 32]>())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

const WRONG_LOGIN: &str = "wrong login or password, or the operator is disabled";

/// An operator no one is, whose password a failed login for an unknown
/// login name is checked against: so the answer takes as long whether the
/// name exists or not.
fn nobody() -> Option<&'static Operator> {
    static NOBODY: OnceLock<Option<Operator>> = OnceLock::new();
    NOBODY
        .get_or_init(|| {
            let password = hallsync_hall::operators::hash_password(&random_token()).ok()?;
            Some(Operator {
                login: String::new(),
                name: String::new(),
                roles: Default::default(),
                password,
                disabled: true,
                generation: 0,
                changed: hallsync_model::Ts(0),
            })
        })
        .as_ref()
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
        Auth::with_limits(node, token, secure, Limits::default())
    }

    /// [`Auth::new`] with sessions lasting as `limits` say.
    pub fn with_limits(node: &str, token: String, secure: bool, limits: Limits) -> Auth {
        Auth {
            token,
            cookie: format!("hallsync_{}", node.replace('-', "_")),
            secure,
            limits,
            sessions: Mutex::default(),
            failures: Mutex::default(),
            checks: Arc::new(Semaphore::new(CONCURRENT_CHECKS)),
        }
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    /// The session a request's cookie names: its id and secret.
    fn session_cookie<'a>(&self, headers: &'a HeaderMap) -> Option<(&'a str, &'a str)> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == self.cookie)
            .and_then(|(_, v)| v.split_once('.'))
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
        let (id, secret) = self
            .session_cookie(headers)
            .ok_or_else(|| unauthorized("log in first"))?;
        let (login, generation, csrf) = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let Some(s) = sessions.get_mut(id).filter(|s| same(secret, &s.secret)) else {
                return Err(unauthorized("the session has ended: log in again"));
            };
            if !s.live(now, self.limits) {
                sessions.remove(id);
                return Err(unauthorized("the session has expired: log in again"));
            }
            s.seen = now;
            (s.login.clone(), s.generation, s.csrf.clone())
        };
        let operator = hall.operator(&login).map_err(ApiError::from)?;
        let current = operator.filter(|o| !o.disabled && o.generation == generation);
        let Some(operator) = current else {
            self.end(id);
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

    /// Waits for a turn to check a password (a few at once); hold it
    /// across [`Auth::login`].
    pub async fn login_turn(&self) -> Option<OwnedSemaphorePermit> {
        self.checks.clone().acquire_owned().await.ok()
    }

    /// Checks a login and opens a session; throttled per operator and per
    /// client address. Returns the session's cookie value and what the
    /// client learns. A wrong password, an unknown login and a disabled
    /// operator are told apart neither by the answer nor by its time.
    pub fn login(
        &self,
        hall: &Hall,
        login: &str,
        password: &str,
        from: IpAddr,
    ) -> Result<(String, LoggedIn), ApiError> {
        if login.len() > MAX_LOGIN || password.len() > 4 * hallsync_hall::operators::MAX_PASSWORD {
            return Err(unauthorized(WRONG_LOGIN));
        }
        let from = throttled_address(from);
        let now = Instant::now();
        let wait = self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .wait(login, from, now);
        if let Some(wait) = wait {
            return Err(ApiError::new(
                429,
                "too_many_attempts",
                format!(
                    "too many failed logins: try again in {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
        let operator = hall.operator(login).map_err(ApiError::from)?;
        let known = operator.as_ref().map(|o| o.login.clone());
        let matches = match (&operator, nobody()) {
            (Some(o), _) => o.verify(password),
            (None, Some(nobody)) => {
                std::hint::black_box(nobody.verify(password));
                false
            }
            (None, None) => false,
        };
        let Some(operator) = operator.filter(|o| matches && !o.disabled) else {
            self.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .fail(known.as_deref(), from, Instant::now());
            tracing::warn!(login = ?login, %from, "a failed login");
            return Err(unauthorized(WRONG_LOGIN));
        };
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .logins
            .remove(login);
        let id = hex(&rand::random::<[u8; 16]>());
        let secret = random_token();
        let csrf = random_token();
        let now = Instant::now();
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if sessions.len() >= MAX_SESSIONS {
                sessions.retain(|_, s| s.live(now, self.limits));
            }
            let mut mine: Vec<(Instant, String)> = sessions
                .iter()
                .filter(|(_, s)| s.login == operator.login)
                .map(|(k, s)| (s.started, k.clone()))
                .collect();
            if mine.len() >= MAX_SESSIONS_PER_OPERATOR {
                mine.sort();
                for (_, k) in &mine[..=mine.len() - MAX_SESSIONS_PER_OPERATOR] {
                    sessions.remove(k);
                }
            }
            if sessions.len() >= MAX_SESSIONS {
                return Err(ApiError::new(
                    503,
                    "unavailable",
                    "too many sessions are open; try again later",
                ));
            }
            sessions.insert(
                id.clone(),
                Session {
                    secret: secret.clone(),
                    login: operator.login.clone(),
                    generation: operator.generation,
                    csrf: csrf.clone(),
                    started: now,
                    seen: now,
                },
            );
        }
        tracing::info!(login = %operator.login, %from, "an operator logged in");
        Ok((
            format!("{id}.{secret}"),
            LoggedIn {
                operator: (&operator).into(),
                csrf,
            },
        ))
    }

    /// Ends the session a request carries, if any.
    pub fn logout(&self, headers: &HeaderMap) {
        if let Some((id, secret)) = self.session_cookie(headers) {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if sessions.get(id).is_some_and(|s| same(secret, &s.secret)) {
                sessions.remove(id);
            }
        }
    }

    fn end(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// The `Set-Cookie` value that gives the browser a session, or (with
    /// `None`) takes it away.
    pub fn set_cookie(&self, token: Option<&str>) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let value = match token {
            Some(t) => format!(
                "{}={t}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                self.cookie,
                self.limits.max_age.as_secs()
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
        assert_eq!(f(u32::MAX).wait(t0), Some(MAX_WAIT), "no overflow");
        let mut worn = f(u32::MAX);
        Failures::record(&mut worn, t0);
        assert_eq!(worn.count, u32::MAX);
    }

    #[test]
    fn failures_from_ever_new_addresses_and_unknown_logins_stay_bounded() {
        let mut t = Throttle::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES as u32 + 10 {
            let from = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.fail(None, from, now);
        }
        assert_eq!(t.addresses.len(), MAX_FAILURES);
        assert!(t.logins.is_empty(), "unknown logins are not remembered");
        t.fail(Some("wangfang"), IpAddr::V4([10, 0, 0, 1].into()), now);
        assert_eq!(t.logins.len(), 1);
    }

    #[test]
    fn an_ipv6_client_is_throttled_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttled_address(a), throttled_address(b));
        assert_ne!(throttled_address(a), throttled_address(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            throttled_address(mapped),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
