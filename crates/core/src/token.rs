//! The per-user bearer token: random, created 0600 on first run, required by every daemon.

use std::io::{self, Read, Seek, Write};
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
        // Creators serialise on an exclusive lock of the token file itself; whoever finds it
        // still empty under the lock writes it, everybody else reads theirs.
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        file.lock()?;
        let mut existing = String::new();
        file.read_to_string(&mut existing)?;
        if !existing.trim().is_empty() {
            return Ok(Token(existing.trim().to_owned()));
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(io::Error::other)?;
        let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(fresh.as_bytes())?;
        file.sync_all()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(Token(fresh))
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
    fn concurrent_creators_agree() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let tokens: Vec<Token> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| s.spawn(|| Token::load_or_create(&state).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(tokens.iter().all(|t| *t == tokens[0]));
        assert_eq!(Token::load(&state).unwrap(), tokens[0]);
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
