//! The manager routes of adoption (the dashboard's Servers page): list the servers of the
//! user's client files, adopt them (dry run first), undo. The logic is msm-client-config's
//! `adopt`; here the host loads the new targets before any client file changes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use serde::Deserialize;

use msm_client_config::adopt::{self, AdoptRequest, Hosting};
use msm_client_config::{ClientDirs, find_proxy_for_current_exe};

use super::AppError;
use crate::control::HostRef;

type AppState = HostRef;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/adopt", get(adopt_list).post(adopt_apply))
        .route("/api/adopt/undo", post(adopt_undo))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ListQuery {
    project: Option<PathBuf>,
}

/// `POST /api/adopt` and `/api/adopt/undo`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct AdoptBody {
    names: Vec<String>,
    all: bool,
    dry_run: bool,
    project: Option<PathBuf>,
    share: BTreeMap<String, Hosting>,
}

/// The project whose `.mcp.json` is read: the caller's (absolute), else the home directory
/// (the host's own working directory is no project).
fn project_dir(project: Option<PathBuf>, dirs: &ClientDirs) -> Result<PathBuf, AppError> {
    match project {
        Some(dir) if dir.is_absolute() => Ok(dir),
        Some(dir) => Err(AppError::BadRequest(format!(
            "the project directory `{}` is not absolute",
            dir.display()
        ))),
        None => Ok(dirs.home.clone()),
    }
}

fn adopt_error(error: adopt::AdoptError) -> AppError {
    match error {
        adopt::AdoptError::Write(e) => e.into(),
        other => AppError::BadRequest(other.to_string()),
    }
}

async fn adopt_list(
    State(host): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.to_string()))?;
    let record = host.state_dir().adoption_record_path();
    let found = tokio::task::spawn_blocking(move || {
        let dirs = ClientDirs::from_env()?;
        let project = project_dir(query.project, &dirs)?;
        adopt::list(&dirs, &project, &record).map_err(adopt_error)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    Ok(Json(
        serde_json::to_value(found).map_err(|e| AppError::Internal(e.to_string()))?,
    ))
}

async fn adopt_apply(
    State(host): State<AppState>,
    body: Option<Json<AdoptBody>>,
) -> Result<Json<serde_json::Value>, AppError> {
    run(host, body.map(|Json(b)| b).unwrap_or_default(), false).await
}

async fn adopt_undo(
    State(host): State<AppState>,
    body: Option<Json<AdoptBody>>,
) -> Result<Json<serde_json::Value>, AppError> {
    run(host, body.map(|Json(b)| b).unwrap_or_default(), true).await
}

async fn run(
    host: AppState,
    body: AdoptBody,
    undo: bool,
) -> Result<Json<serde_json::Value>, AppError> {
    if body.names.is_empty() && !body.all {
        return Err(AppError::BadRequest(
            "name the servers (`names`) or set `all`".into(),
        ));
    }
    let runtime = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || {
        let dirs = ClientDirs::from_env()?;
        let request = AdoptRequest {
            names: body.names,
            all: body.all,
            dry_run: body.dry_run,
            share: body.share,
            project: project_dir(body.project, &dirs)?,
            dirs,
            config_path: host.state_dir().config_path(),
            record_path: host.state_dir().adoption_record_path(),
            proxy: if undo {
                PathBuf::new()
            } else {
                find_proxy_for_current_exe()?
            },
            environment: std::env::vars().collect(),
        };
        let reload = || {
            runtime
                .block_on(crate::reload::reload(&host))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        if undo {
            let report = adopt::undo(&request).map_err(adopt_error)?;
            if !request.dry_run && !report.targets.is_empty() {
                reload().map_err(AppError::BadRequest)?;
            }
            Ok::<_, AppError>(report)
        } else {
            adopt::adopt(&request, &mut |_| reload()).map_err(adopt_error)
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    Ok(Json(
        serde_json::to_value(report).map_err(|e| AppError::Internal(e.to_string()))?,
    ))
}
