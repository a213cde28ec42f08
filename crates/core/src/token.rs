//! The per-user bearer token: random, created 0600 on first run, required by every daemon.

use std::io::{self, Write};
use std::path::Path;

use crate::StateDir;

/// A bearer token; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares in constant time, so that the check leaks nothing through timing.
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Reads the state dir's token, creating it (0600, atomically) when missing or empty.
    pub fn load_or_create(state: &StateDir) -> io::Result<Token> {
        let path = state.token_path();
        if let Some(token) = read(&path)? {
            return Ok(token);
        }
        state.ensure()?;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(io::Error::other)?;
        let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = tempfile_in(state.root())?;
        write_private(&tmp, &fresh)?;
        // An empty file (a crash mid-write) is replaced; otherwise `hard_link` fails if another
        // process won the race, and then theirs is the token.
        let linked = if path.exists() {
            std::fs::rename(&tmp, &path)
        } else {
            std::fs::hard_link(&tmp, &path)
        };
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Token(fresh)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                read(&path)?.ok_or_else(|| io::Error::other(format!("{} is empty", path.display())))
            }
            Err(_) => {
                // File systems without hard links: plain exclusive create.
                write_private(&path, &fresh)?;
                Ok(Token(fresh))
            }
        }
    }

    /// Reads the token without creating one (clients of a running host).
    pub fn load(state: &StateDir) -> io::Result<Token> {
        read(&state.token_path())?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no token at {}", state.token_path().display()),
            )
        })
    }
}

fn read(path: &Path) -> io::Result<Option<Token>> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(Token(text.trim().to_owned()))),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn tempfile_in(dir: &Path) -> io::Result<std::path::PathBuf> {
    Ok(dir.join(format!(".token.{}.tmp", std::process::id())))
}

fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            options.open(path)?
        }
        other => other?,
    };
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let first = Token::load_or_create(&state).unwrap();
        let second = Token::load_or_create(&state).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.as_str().len(), 64);
        assert!(first.matches(second.as_str()));
        assert!(!first.matches("nope"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(state.token_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn empty_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        std::fs::write(state.token_path(), "\n").unwrap();
        let token = Token::load_or_create(&state).unwrap();
        assert_eq!(token.as_str().len(), 64);
        assert_eq!(Token::load(&state).unwrap(), token);
    }
}
