//! Finds the installed `mcp-session-proxy`: beside the running binary (where the bundle puts
//! the sidecar, possibly with a target-triple suffix), then on PATH. Never guesses: a missing
//! proxy is an error, so no config ever points at nothing, nor at an AppImage's mount, which
//! is gone when the app exits.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::ConfigWriteError;
use crate::merge::PROXY_FILE_PREFIX;

/// The proxy's file name on this OS.
pub fn proxy_file_name() -> String {
    format!("{PROXY_FILE_PREFIX}{}", std::env::consts::EXE_SUFFIX)
}

/// Finds the proxy for the running binary: `std::env::current_exe()`'s dir, then `$PATH`.
pub fn find_proxy_for_current_exe() -> Result<PathBuf, ConfigWriteError> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let cwd = std::env::current_dir().ok();
    let mount = appimage_mount();
    let beside = exe_dir.as_deref().map(|dir| ExeDir {
        dir,
        transient_mount: mount.as_deref().filter(|mount| dir.starts_with(mount)),
    });
    find_proxy(beside, std::env::var_os("PATH").as_deref(), cwd.as_deref())
}

/// Where the running AppImage is mounted (its runtime sets `APPIMAGE` and `APPDIR`).
fn appimage_mount() -> Option<PathBuf> {
    std::env::var_os("APPIMAGE")?;
    Some(PathBuf::from(std::env::var_os("APPDIR")?))
}

/// The running binary's directory, and whether it lives in a mount that goes away with the app.
#[derive(Debug, Clone, Copy)]
pub struct ExeDir<'a> {
    pub dir: &'a Path,
    pub transient_mount: Option<&'a Path>,
}

/// Looks in `exe_dir` for `mcp-session-proxy[.exe]`, then for a sidecar named
/// `mcp-session-proxy-<target triple>[.exe]`, then in each `path_var` entry for
/// `mcp-session-proxy[.exe]`. Relative PATH entries resolve against `cwd`. Symlinks are kept
/// (a package manager's stable link survives upgrades; its target may not). A proxy beside
/// the binary in a transient mount is only taken note of: PATH must supply a lasting one.
pub fn find_proxy(
    exe_dir: Option<ExeDir<'_>>,
    path_var: Option<&OsStr>,
    cwd: Option<&Path>,
) -> Result<PathBuf, ConfigWriteError> {
    let file_name = proxy_file_name();
    let mut searched = Vec::new();
    let mut transient = None;
    if let Some(ExeDir {
        dir,
        transient_mount,
    }) = exe_dir
    {
        let exact = dir.join(&file_name);
        let beside = if is_executable_file(&exact) {
            Some(exact)
        } else {
            searched.push(exact);
            searched.push(dir.join(format!(
                "{PROXY_FILE_PREFIX}-<target-triple>{}",
                std::env::consts::EXE_SUFFIX
            )));
            find_sidecar(dir)
        };
        match (beside, transient_mount) {
            (Some(path), None) => return Ok(path),
            (Some(path), Some(mount)) => transient = Some((path, mount.to_owned())),
            (None, _) => {}
        }
    }
    for dir in path_var.map(std::env::split_paths).into_iter().flatten() {
        if dir.as_os_str().is_empty() {
            continue;
        }
        let dir = match (dir.is_absolute(), cwd) {
            (true, _) => dir,
            (false, Some(cwd)) => cwd.join(dir),
            (false, None) => continue,
        };
        let candidate = dir.join(&file_name);
        if is_executable_file(&candidate) {
            return Ok(candidate);
        }
        searched.push(candidate);
    }
    Err(match transient {
        Some((path, mount)) => ConfigWriteError::ProxyOnlyInAppImage { path, mount },
        None => ConfigWriteError::ProxyNotFound { searched },
    })
}

/// `mcp-session-proxy-<triple>[.exe]` in `dir` (Tauri's `externalBin` naming), the first in
/// name order so that the answer is stable.
fn find_sidecar(dir: &Path) -> Option<PathBuf> {
    let prefix = format!("{PROXY_FILE_PREFIX}-");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix)
                && name.ends_with(std::env::consts::EXE_SUFFIX)
                && !name.ends_with(".d")
                && !name.ends_with(".pdb")
        })
        .map(|entry| entry.path())
        .filter(|path| is_executable_file(path))
        .collect();
    candidates.sort();
    candidates.into_iter().next()
}

fn is_executable_file(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else {
        return false;
    };
    if !metadata.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests (clippy sees only a bare cfg(test))
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn touch(path: &Path, mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn search_order_beside_then_sidecar_then_path() {
        let root = tempfile::tempdir().unwrap();
        let exe_dir = root.path().join("app");
        let path_a = root.path().join("a");
        let path_b = root.path().join("b");
        std::fs::create_dir_all(&exe_dir).unwrap();
        let path_var = std::env::join_paths([&path_a, Path::new("rel"), &path_b]).unwrap();
        let beside = ExeDir {
            dir: &exe_dir,
            transient_mount: None,
        };
        let find = || find_proxy(Some(beside), Some(&path_var), Some(root.path()));

        let err = find().unwrap_err().to_string();
        assert!(
            err.contains("mcp-session-proxy") && err.contains(&*path_b.to_string_lossy()),
            "{err}"
        );

        touch(&path_b.join("mcp-session-proxy"), 0o755);
        assert_eq!(find().unwrap(), path_b.join("mcp-session-proxy"));
        touch(&root.path().join("rel/mcp-session-proxy"), 0o755);
        assert_eq!(find().unwrap(), root.path().join("rel/mcp-session-proxy"));
        touch(&path_a.join("mcp-session-proxy"), 0o644);
        assert_eq!(
            find().unwrap(),
            root.path().join("rel/mcp-session-proxy"),
            "not executable"
        );

        touch(&exe_dir.join("mcp-session-proxy.d"), 0o755);
        touch(
            &exe_dir.join("mcp-session-proxy-x86_64-unknown-linux-gnu"),
            0o755,
        );
        assert_eq!(
            find().unwrap(),
            exe_dir.join("mcp-session-proxy-x86_64-unknown-linux-gnu")
        );
        touch(&exe_dir.join("mcp-session-proxy"), 0o755);
        assert_eq!(find().unwrap(), exe_dir.join("mcp-session-proxy"));
    }

    #[test]
    fn a_proxy_inside_an_appimage_mount_is_never_written() {
        let root = tempfile::tempdir().unwrap();
        let mount = root.path().join(".mount_msm");
        let exe_dir = mount.join("usr/bin");
        touch(&exe_dir.join("mcp-session-proxy"), 0o755);
        let on_path = root.path().join("bin");
        let path_var = std::env::join_paths([&on_path]).unwrap();
        let beside = ExeDir {
            dir: &exe_dir,
            transient_mount: Some(&mount),
        };
        let find = || find_proxy(Some(beside), Some(&path_var), None);

        let err = find().unwrap_err();
        assert!(
            matches!(&err, ConfigWriteError::ProxyOnlyInAppImage { path, .. } if *path == exe_dir.join("mcp-session-proxy")),
            "{err}"
        );
        assert!(err.to_string().contains("AppImage"), "{err}");

        touch(&on_path.join("mcp-session-proxy"), 0o755);
        assert_eq!(find().unwrap(), on_path.join("mcp-session-proxy"));
    }
}
