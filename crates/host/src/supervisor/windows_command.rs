//! How Windows runs a `command` target, as pure functions of PATH, PATHEXT and the arguments,
//! so that every OS unit-tests them (Windows-shaped fixtures, no file system).
//!
//! `CreateProcess` finds neither `npx` (it is `npx.cmd`) nor `uvx.cmd`: only an `.exe`. So a
//! bare name is looked up through PATH and PATHEXT as `cmd.exe` would ([`resolve`]), and a
//! batch file (`.cmd`/`.bat`), which only `cmd.exe` can run, runs as
//! `cmd.exe /d /e:ON /v:OFF /s /c ""SCRIPT" ARGS"` with each argument quoted so that both
//! `cmd.exe` and the program the script starts (node, python) read it back exactly
//! ([`batch_command_line`]). `client-config` can reuse [`resolve`] and [`is_batch`] when it
//! adopts `npx`/`uvx` entries written for Windows.

use std::path::{Path, PathBuf};

/// The extensions Windows tries when `PATHEXT` is unset.
pub const DEFAULT_PATHEXT: &str = ".COM;.EXE;.BAT;.CMD";

/// `cmd.exe` when `%ComSpec%` is unset.
pub const DEFAULT_COMSPEC: &str = r"C:\Windows\System32\cmd.exe";

/// An argument that no quoting can carry through `cmd.exe` intact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchArgError {
    #[error(
        "argument {0:?} of a .cmd/.bat program contains a line break or NUL, which cmd.exe cannot pass on"
    )]
    Unpassable(String),
    #[error("batch file path {0:?} contains a double quote")]
    QuotedScript(String),
}

/// How to start the program: `program` with `args` (quoted by the standard library), or
/// `program` followed by `raw` verbatim (a `cmd.exe` line, already quoted here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: PathBuf,
    pub args: LaunchArgs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchArgs {
    Plain(Vec<String>),
    Raw(String),
}

/// The program `command` names, as Windows looks it up: surrounding double quotes (a path
/// copied from Explorer) dropped; a name without a directory in each PATH directory, as is
/// when its extension is in PATHEXT, else with each PATHEXT extension; a path without an
/// extension with each PATHEXT extension. `None` leaves `command` to `CreateProcess`.
pub fn resolve(
    command: &str,
    path_dirs: &[PathBuf],
    pathext: &str,
    exists: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    let command = unquote(command);
    let exts: Vec<&str> = pathext
        .split(';')
        .map(str::trim)
        .filter(|e| e.starts_with('.') && e.len() > 1)
        .collect();
    let extension = extension_of(command);
    let known_ext = extension.is_some_and(|ext| exts.iter().any(|e| e.eq_ignore_ascii_case(ext)));
    let with_exts = |base: &str| -> Option<String> {
        exts.iter()
            .map(|ext| format!("{base}{}", ext.to_ascii_lowercase()))
            .find(|candidate| exists(Path::new(candidate)))
    };
    let has_dir = command.contains(['/', '\\']) || has_drive(command);
    if has_dir {
        if extension.is_some() {
            return None;
        }
        return with_exts(command).map(PathBuf::from);
    }
    for dir in path_dirs {
        let base = join(dir, command);
        if known_ext {
            if exists(Path::new(&base)) {
                return Some(PathBuf::from(base));
            }
        } else if let Some(found) = with_exts(&base) {
            return Some(PathBuf::from(found));
        }
    }
    None
}

/// Whether only `cmd.exe` can run `program` (a `.cmd` or `.bat` file).
pub fn is_batch(program: &Path) -> bool {
    extension_of(&program.to_string_lossy())
        .is_some_and(|ext| ext.eq_ignore_ascii_case(".cmd") || ext.eq_ignore_ascii_case(".bat"))
}

/// `arg` quoted for the command line of a program that splits it as the Microsoft C runtime
/// and `CommandLineToArgvW` do: backslashes are literal except before a double quote.
pub fn quote_arg(arg: &str) -> String {
    let needs_quotes = arg.is_empty() || arg.contains([' ', '\t', '\n', '\x0b', '"']);
    if !needs_quotes {
        return arg.to_owned();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    let mut backslashes = 0usize;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                // 2n backslashes and \" stand for n backslashes and a quote.
                out.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
                continue;
            }
            _ => {}
        }
        if c != '\\' {
            out.extend(std::iter::repeat_n('\\', backslashes));
            backslashes = 0;
            out.push(c);
        }
    }
    // Backslashes before the closing quote are doubled, so it stays a closing quote.
    out.extend(std::iter::repeat_n('\\', backslashes * 2));
    out.push('"');
    out
}

/// The `cmd.exe` arguments that run `script` with `args`, appended verbatim after `cmd.exe`.
///
/// `/d` skips AutoRun commands, `/v:OFF` keeps `!` literal, `/e:ON` makes `%cd:~,%` an empty
/// expansion, `/s` strips exactly the outer pair of quotes. Inside, every argument that holds
/// anything but letters, digits and `-_.:/\@+` is quoted: in a quoted run `cmd.exe` leaves
/// `& | < > ( ) ^` alone; a `"` is written `""`, which `cmd.exe` sees as leaving and re-entering
/// the quotes and the C runtime as one literal quote (the script's `%*` passes it through the
/// same way); a `%` is written `%%cd:~,%`, so no `%VAR%` is expanded. A line break or NUL
/// would end the command, so it is refused.
pub fn batch_command_line(script: &Path, args: &[String]) -> Result<String, BatchArgError> {
    let script = script.to_string_lossy();
    if script.contains('"') {
        return Err(BatchArgError::QuotedScript(script.into_owned()));
    }
    let mut line = format!("/d /e:ON /v:OFF /s /c \"\"{script}\"");
    for arg in args {
        if arg.contains(['\r', '\n', '\0']) {
            return Err(BatchArgError::Unpassable(arg.clone()));
        }
        line.push(' ');
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:/\\@+".contains(c));
        if plain {
            line.push_str(arg);
            continue;
        }
        line.push('"');
        let mut backslashes = 0usize;
        for c in arg.chars() {
            match c {
                '\\' => {
                    backslashes += 1;
                    line.push('\\');
                    continue;
                }
                // The C runtime reads `\\""` as one backslash and a quote: double the run.
                '"' => {
                    line.extend(std::iter::repeat_n('\\', backslashes));
                    line.push_str("\"\"");
                }
                '%' => line.push_str("%%cd:~,%"),
                c => line.push(c),
            }
            backslashes = 0;
        }
        line.extend(std::iter::repeat_n('\\', backslashes));
        line.push('"');
    }
    line.push('"');
    Ok(line)
}

/// What to start for `command args`: the resolved program, through `comspec` when it is a
/// batch file.
pub fn plan(
    command: &str,
    args: &[String],
    path_dirs: &[PathBuf],
    pathext: &str,
    comspec: &Path,
    exists: impl Fn(&Path) -> bool,
) -> Result<Launch, BatchArgError> {
    let program = resolve(command, path_dirs, pathext, exists)
        .unwrap_or_else(|| PathBuf::from(unquote(command)));
    if is_batch(&program) {
        return Ok(Launch {
            program: comspec.to_path_buf(),
            args: LaunchArgs::Raw(batch_command_line(&program, args)?),
        });
    }
    Ok(Launch {
        program,
        args: LaunchArgs::Plain(args.to_vec()),
    })
}

fn unquote(command: &str) -> &str {
    let trimmed = command.trim();
    trimmed
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(trimmed)
}

/// The extension of the last path component (with its dot), Windows separators included.
fn extension_of(path: &str) -> Option<&str> {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let dot = name.rfind('.')?;
    (dot > 0 && dot + 1 < name.len()).then(|| &name[dot..])
}

fn has_drive(command: &str) -> bool {
    let bytes = command.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// `dir\name` with the separator `dir` already uses (a Windows path on any OS).
fn join(dir: &Path, name: &str) -> String {
    let dir = dir.to_string_lossy();
    if dir.ends_with(['/', '\\']) {
        format!("{dir}{name}")
    } else if dir.contains('/') && !dir.contains('\\') {
        format!("{dir}/{name}")
    } else {
        format!("{dir}\\{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p: &Path| list.iter().any(|f| Path::new(f) == p)
    }

    #[test]
    fn resolution_follows_path_and_pathext() {
        let dirs = vec![
            PathBuf::from(r"C:\Program Files\nodejs"),
            PathBuf::from(r"C:\Users\Jo Ann\.local\bin"),
            PathBuf::from("D:/tools/"),
        ];
        let exists = files(&[
            r"C:\Program Files\nodejs\npx.cmd",
            r"C:\Program Files\nodejs\node.exe",
            r"C:\Users\Jo Ann\.local\bin\uvx.exe",
            r"C:\Users\Jo Ann\.local\bin\npx.exe",
            "D:/tools/server.bat",
            r"E:\bin\mcp-server.cmd",
        ]);
        let pathext = ".COM;.EXE;.BAT;.CMD";
        let cases: &[(&str, Option<&str>)] = &[
            // PATH order first, then PATHEXT order within a directory.
            ("npx", Some(r"C:\Program Files\nodejs\npx.cmd")),
            ("node", Some(r"C:\Program Files\nodejs\node.exe")),
            ("uvx", Some(r"C:\Users\Jo Ann\.local\bin\uvx.exe")),
            ("server", Some("D:/tools/server.bat")),
            ("npx.cmd", Some(r"C:\Program Files\nodejs\npx.cmd")),
            // Quotes from a copied path are dropped.
            ("\"npx\"", Some(r"C:\Program Files\nodejs\npx.cmd")),
            (r"E:\bin\mcp-server", Some(r"E:\bin\mcp-server.cmd")),
            (r"E:\bin\mcp-server.cmd", None),
            ("E:mcp-server.exe", None),
            ("missing", None),
            // An extension outside PATHEXT is a name with a dot, not a file type.
            ("mcp-server.v2", None),
        ];
        for (command, expected) in cases {
            assert_eq!(
                resolve(command, &dirs, pathext, &exists),
                expected.map(PathBuf::from),
                "{command}"
            );
        }
    }

    #[test]
    fn batch_files_are_recognised_by_extension() {
        for (path, batch) in [
            (r"C:\n\npx.cmd", true),
            (r"C:\n\NPX.CMD", true),
            ("run.bat", true),
            (r"C:\n\node.exe", false),
            (r"C:\my.cmd\node", false),
            (".cmd", false),
        ] {
            assert_eq!(is_batch(Path::new(path)), batch, "{path}");
        }
    }

    #[test]
    fn arguments_quote_as_the_c_runtime_splits_them() {
        for (arg, quoted) in [
            ("plain", "plain"),
            ("", r#""""#),
            ("two words", r#""two words""#),
            (r"C:\Program Files\x\", r#""C:\Program Files\x\\""#),
            (r"C:\dir\file", r"C:\dir\file"),
            (r#"say "hi""#, r#""say \"hi\"""#),
            (r#"a\"b"#, r#""a\\\"b""#),
        ] {
            assert_eq!(quote_arg(arg), quoted, "{arg}");
        }
    }

    #[test]
    fn batch_command_lines_keep_every_argument_literal() {
        let script = Path::new(r"C:\Program Files\nodejs\npx.cmd");
        let cases: &[(&[&str], &str)] = &[
            (
                &["-y", "@modelcontextprotocol/server-memory"],
                r#"/d /e:ON /v:OFF /s /c ""C:\Program Files\nodejs\npx.cmd" -y @modelcontextprotocol/server-memory""#,
            ),
            (
                &[r"C:\Users\Jo Ann\notes", "a&b|c", ""],
                r#"/d /e:ON /v:OFF /s /c ""C:\Program Files\nodejs\npx.cmd" "C:\Users\Jo Ann\notes" "a&b|c" """"#,
            ),
            (
                &["%PATH%", "say \"hi\"", r"end\"],
                r#"/d /e:ON /v:OFF /s /c ""C:\Program Files\nodejs\npx.cmd" "%%cd:~,%PATH%%cd:~,%" "say ""hi""" end\""#,
            ),
            (
                &[r"trail\ ", r#"q\"x"#],
                r#"/d /e:ON /v:OFF /s /c ""C:\Program Files\nodejs\npx.cmd" "trail\ " "q\\""x"""#,
            ),
        ];
        for (args, expected) in cases {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            assert_eq!(
                batch_command_line(script, &args).unwrap(),
                *expected,
                "{args:?}"
            );
        }
        for bad in ["line\nbreak", "cr\r", "nul\0"] {
            assert_eq!(
                batch_command_line(script, &[bad.to_owned()]),
                Err(BatchArgError::Unpassable(bad.to_owned()))
            );
        }
    }

    #[test]
    fn a_plan_runs_batch_files_through_cmd() {
        let dirs = vec![PathBuf::from(r"C:\Program Files\nodejs")];
        let exists = files(&[
            r"C:\Program Files\nodejs\npx.cmd",
            r"C:\Program Files\nodejs\node.exe",
        ]);
        let comspec = Path::new(DEFAULT_COMSPEC);
        let args = vec!["-y".to_owned(), "a b".to_owned()];
        assert_eq!(
            plan("npx", &args, &dirs, DEFAULT_PATHEXT, comspec, &exists).unwrap(),
            Launch {
                program: comspec.to_path_buf(),
                args: LaunchArgs::Raw(
                    r#"/d /e:ON /v:OFF /s /c ""C:\Program Files\nodejs\npx.cmd" -y "a b"""#.into()
                ),
            }
        );
        assert_eq!(
            plan("node", &args, &dirs, DEFAULT_PATHEXT, comspec, &exists).unwrap(),
            Launch {
                program: PathBuf::from(r"C:\Program Files\nodejs\node.exe"),
                args: LaunchArgs::Plain(args.clone()),
            }
        );
        assert_eq!(
            plan("python", &args, &dirs, DEFAULT_PATHEXT, comspec, &exists).unwrap(),
            Launch {
                program: PathBuf::from("python"),
                args: LaunchArgs::Plain(args.clone()),
            }
        );
    }
}
