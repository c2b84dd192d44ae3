//! A page's commands, run at this node: client operations through the same path, bounds and
//! error codes as the HTTP API (`PUT/GET/DELETE /kv/{key}`, counted in the same request
//! metrics), and fault injection only when the node was started with
//! `--allow-fault-injection`.

use crate::http::ApiError;
use crate::runtime::{Control, NodeHandle};
use ringstore_core::node::{ClientOk, ClientOp};
use ringstore_core::ui::{Answer, Command, CommandError, ErrorCode, VALUE_SHOWN_BYTES_MAX};
use std::time::{Duration, Instant};

/// How long a fault command waits for the node to report its faults.
const FAULTS_TIMEOUT: Duration = Duration::from_secs(2);

/// The socket's error for the HTTP API's.
pub fn command_error(e: &ApiError) -> CommandError {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let code = match e {
        // The HTTP layer's own refusals never come from a command; bad requests all the same.
        ApiError::BadRequest(_)
        | ApiError::ForbiddenOrigin(_)
        | ApiError::UnsupportedMediaType(_) => ErrorCode::BadRequest,
        ApiError::TooLarge { .. } => ErrorCode::TooLarge,
        ApiError::QuorumUnavailable { needed, got } => ErrorCode::QuorumUnavailable {
            needed: count(*needed),
            got: count(*got),
        },
        ApiError::Overloaded(_) => ErrorCode::Overloaded,
        ApiError::Unavailable(_) | ApiError::NotFound(_) | ApiError::StorageUnavailable { .. } => {
            ErrorCode::Unavailable
        }
    };
    let message = match e {
        ApiError::BadRequest(m)
        | ApiError::Unavailable(m)
        | ApiError::ForbiddenOrigin(m)
        | ApiError::UnsupportedMediaType(m) => m.clone(),
        ApiError::TooLarge { len, max } => match len {
            Some(len) => format!("value of {len} bytes is over the limit of {max}"),
            None => format!("value is over the limit of {max} bytes"),
        },
        ApiError::QuorumUnavailable { needed, got } => {
            format!("needed {needed} replicas to answer in time, got {got}")
        }
        ApiError::Overloaded(n) => format!("overloaded: {n} requests in flight"),
        ApiError::StorageUnavailable {
            needed,
            got,
            failures,
        } => {
            let causes: Vec<String> = failures.iter().map(|(n, f)| format!("{n}: {f}")).collect();
            format!(
                "storage unavailable: needed {needed} replicas to store the write, got {got} ({})",
                causes.join("; ")
            )
        }
        ApiError::NotFound(_) => "not found".into(),
    };
    CommandError::new(code, message)
}

/// A client operation, as the HTTP handlers run it: the node checks the key and value bounds
/// and answers with the same errors.
async fn client(node: &NodeHandle, op: ClientOp) -> Result<Answer, ApiError> {
    match node.client(op).await? {
        ClientOk::Written {
            version,
            acks,
            hinted,
        } => Ok(Answer::Written {
            ts_micros: version.ts_micros,
            writer: version.node,
            acks: u32::try_from(acks).unwrap_or(u32::MAX),
            hinted: u32::try_from(hinted).unwrap_or(u32::MAX),
        }),
        ClientOk::Found { version, mut value } => {
            let value_bytes = value.len() as u64;
            value.truncate(VALUE_SHOWN_BYTES_MAX);
            Ok(Answer::Found {
                ts_micros: version.ts_micros,
                writer: version.node,
                value,
                value_bytes,
            })
        }
        ClientOk::NotFound { version } => Ok(Answer::NotFound {
            deleted_ts_micros: version.map(|v| v.ts_micros),
        }),
    }
}

/// A fault injection command; refused unless the node allows them.
async fn fault(node: &NodeHandle, control: Control) -> Result<Answer, CommandError> {
    if !node.fault_injection {
        return Err(CommandError::new(
            ErrorCode::FaultInjectionOff,
            format!(
                "{} was started without --allow-fault-injection: partition, heal and clock skew are off",
                node.id
            ),
        ));
    }
    let unavailable = || CommandError::new(ErrorCode::Unavailable, "the node is not answering");
    if !node.control(control).await {
        return Err(unavailable());
    }
    // The view is built after the control command (one queue, in order): it shows its effect.
    let view = tokio::time::timeout(FAULTS_TIMEOUT, node.view())
        .await
        .ok()
        .flatten()
        .ok_or_else(unavailable)?;
    Ok(Answer::Faults {
        partitioned: view
            .members
            .iter()
            .filter(|m| m.partitioned)
            .map(|m| m.id)
            .collect(),
        clock_skew_ms: view.clock_skew_ms,
    })
}

/// Runs one command and gives its outcome.
pub async fn run(node: &NodeHandle, command: Command) -> Result<Answer, CommandError> {
    let op = match command {
        Command::Client(op) => op,
        Command::Partition { peers } => return fault(node, Control::Partition(peers)).await,
        Command::Heal => return fault(node, Control::Heal).await,
        Command::ClockSkew { ms } => return fault(node, Control::ClockSkew(ms)).await,
    };
    let name = op.name();
    let started = Instant::now();
    let result = client(node, op).await;
    let label = match &result {
        Ok(Answer::NotFound { .. }) => "not_found",
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    node.metrics
        .request(name, label, started.elapsed().as_secs_f64());
    result.map_err(|e| command_error(&e))
}
