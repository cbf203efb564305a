//! The running node: its links, the registry, what was set aside.

use hallsync_hall::operators::Role;
use hallsync_model::Ts;
use hallsync_net::status::NodeStatus;
use serde::{Deserialize, Serialize};

use crate::{ApiError, Caller, Op, Service};

/// The node's links, registry and records set aside: `GET /api/v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {}

impl Op for Status {
    type Out = NodeStatus;
    const PATH: &'static str = "/status";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, _: Ts) -> Result<Self::Out, ApiError> {
        match svc.status() {
            Some(status) => Ok(status),
            None => Err(ApiError::new(
                409,
                "not_running",
                "the node is not running: `hallsync run --bundle <dir>` starts it",
            )),
        }
    }
}
