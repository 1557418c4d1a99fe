//! Command lines a user can paste: [`quote`] writes one argument so that a POSIX shell
//! reads it back as exactly the same bytes, and [`run_args`] gives the arguments of
//! `irqsim run` that select a scenario file again (the reproduce line of every report).

use std::ffi::OsStr;
use std::path::Path;

/// Bytes that need no quoting in any POSIX shell.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b)
}

/// `arg` quoted for a POSIX shell: left as it is when it is a plain word (`--builtin`,
/// `nvme-bare-metal`, `scenarios/a.yaml`); in single quotes when it is printable UTF-8
/// (`'my scenario.yaml'`, a `'` written `'\''`); otherwise as `$'…'` with three-digit octal
/// escapes (`\377`) for control characters and bytes that are not UTF-8 (the POSIX.1-2024
/// dollar-single quotes of bash, zsh, ksh and dash 0.5.12+; octal because `\x` followed by
/// more hex digits is unspecified there), so a path that is not UTF-8 stays reproducible.
pub fn quote(arg: &OsStr) -> String {
    let bytes = arg.as_encoded_bytes();
    if !bytes.is_empty() && bytes.iter().all(|&b| is_plain(b)) {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => format!("'{}'", text.replace('\'', "'\\''")),
        _ => {
            let mut out = String::from("$'");
            for chunk in bytes.utf8_chunks() {
                for c in chunk.valid().chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\'' => out.push_str("\\'"),
                        c if c.is_control() => {
                            let mut buf = [0; 4];
                            for b in c.encode_utf8(&mut buf).bytes() {
                                out.push_str(&format!("\\{b:03o}"));
                            }
                        }
                        c => out.push(c),
                    }
                }
                for b in chunk.invalid() {
                    out.push_str(&format!("\\{b:03o}"));
                }
            }
            out.push('\'');
            out
        }
    }
}

/// The `irqsim run` arguments that select the scenario file at `path` again, quoted; a
/// relative path that starts with `-` gets `./` so that it is not read as an option.
pub fn run_args(path: &Path) -> String {
    if path.as_os_str().as_encoded_bytes().starts_with(b"-") {
        quote(Path::new(".").join(path).as_os_str())
    } else {
        quote(path.as_os_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> String {
        quote(OsStr::new(s))
    }

    #[test]
    fn plain_words_stay_as_they_are() {
        assert_eq!(q("nvme-bare-metal"), "nvme-bare-metal");
        assert_eq!(q("scenarios/catalog/a_b.yaml"), "scenarios/catalog/a_b.yaml");
    }

    #[test]
    fn anything_else_is_quoted() {
        assert_eq!(q("my scenario.yaml"), "'my scenario.yaml'");
        assert_eq!(q("a;rm -rf x.yaml"), "'a;rm -rf x.yaml'");
        assert_eq!(q("it's.yaml"), "'it'\\''s.yaml'");
        assert_eq!(q("$(id)`x`*.yaml"), "'$(id)`x`*.yaml'");
        assert_eq!(q(""), "''");
        assert_eq!(q("é.yaml"), "'é.yaml'");
        assert_eq!(q("a\nb'\\"), "$'a\\012b\\'\\\\'");
        assert_eq!(run_args(Path::new("-x.yaml")), "./-x.yaml");
    }

    #[cfg(unix)]
    #[test]
    fn bytes_that_are_not_utf8_are_escaped() {
        use std::os::unix::ffi::OsStrExt as _;
        assert_eq!(quote(OsStr::from_bytes(b"a\xffb c.yaml")), "$'a\\377b c.yaml'");
    }

    /// What the shell makes of a quoted argument is the argument.
    #[cfg(unix)]
    #[test]
    fn the_shell_reads_back_the_same_bytes() {
        use std::os::unix::ffi::OsStrExt as _;
        let Ok(bash) = which_bash() else { return };
        let cases: [&[u8]; 6] =
            [b"plain.yaml", b"with space.yaml", b"semi;colon", b"quote'and\"dq", b"nl\nand\ttab", b"bad\xff\xfe bytes"];
        for case in cases {
            let quoted = quote(OsStr::from_bytes(case));
            let out = std::process::Command::new(&bash)
                .arg("-c")
                .arg(format!("printf %s {quoted}"))
                .output()
                .expect("bash runs");
            assert_eq!(out.stdout, case, "{quoted}");
        }
    }

    fn which_bash() -> Result<std::path::PathBuf, ()> {
        ["/bin/bash", "/usr/bin/bash"].iter().map(std::path::PathBuf::from).find(|p| p.exists()).ok_or(())
    }
}
