//! Secrets off the command line: `--zk-auth-file` reads the credentials
//! from a file, says when others can read that file, and refuses a bad one
//! in one line that never shows what it holds; a secret typed on the
//! command line, which `ps` shows to every user, is warned about once.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::zookeeper;

use super::text;

const PASSWORD: &str = "Fi1e-Pa55word";

/// A file holding `content`, with the permission bits `mode`, in a temp
/// dir removed on drop.
struct SecretFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SecretFile {
    fn new(content: &str, mode: u32) -> SecretFile {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("zk-auth");
        std::fs::write(&path, content).expect("writes the secret file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .expect("sets its mode");
        SecretFile { _dir: dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("a UTF-8 temp path")
    }
}

/// `zkutil args` with none of the secret variables of the caller's
/// environment, and `envs` set.
fn zkutil_with(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(crate::support::zkutil_binary());
    for key in ["ZK_HOSTS", "ZK_AUTH", "ZK_AUTH_FILE"] {
        command.env_remove(key);
    }
    command
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running zkutil: {e}"))
}

/// Its stderr lines that contain `text`.
fn lines_with(output: &Output, text_: &str) -> Vec<String> {
    text(&output.stderr)
        .lines()
        .filter(|line| line.contains(text_))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_group_readable_secret_file_is_warned_about_once_naming_it_and_a_private_one_is_not() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let credentials = format!("svc:{PASSWORD}\n");
    let shared = SecretFile::new(&credentials, 0o640);
    // Given before and after the subcommand, the global flag is read twice.
    let ls = zkutil_with(
        &[
            "--zk",
            &hosts,
            "--zk-auth-file",
            shared.path(),
            "ls",
            "--zk-auth-file",
            shared.path(),
        ],
        &[],
    );
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    let warnings = lines_with(&ls, "warning");
    assert_eq!(warnings.len(), 1, "one warning: {}", text(&ls.stderr));
    let fix = format!("chmod 600 {}", shared.path());
    assert!(
        warnings[0].contains(&format!("secret file {:?} can be read", shared.path()))
            && warnings[0].contains(&fix),
        "names the file and the fix: {}",
        warnings[0]
    );

    let private = SecretFile::new(&credentials, 0o600);
    // The same flag given after the subcommand (it is global): still read, no warning.
    let ls = zkutil_with(
        &["--zk", &hosts, "ls", "--zk-auth-file", private.path()],
        &[],
    );
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    assert_eq!(lines_with(&ls, "warning"), Vec::<String>::new());
}

#[test]
fn a_missing_empty_or_malformed_secret_file_is_one_usage_error_line_without_its_content() {
    let missing = Path::new("/nonexistent-dir/zk-auth");
    let empty = SecretFile::new("", 0o600);
    let blank = SecretFile::new(" \n\n", 0o600);
    let no_user = SecretFile::new(&format!("{PASSWORD}\n"), 0o600);
    let two_lines = SecretFile::new(&format!("svc:{PASSWORD}\nops:{PASSWORD}\n"), 0o600);
    let cases = [
        (
            missing.to_str().expect("UTF-8"),
            "cannot read secret file \"/nonexistent-dir/zk-auth\": No such file or directory (os error 2)",
        ),
        (empty.path(), "is empty"),
        (blank.path(), "is empty"),
        (no_user.path(), "expected user:password on one line"),
        (two_lines.path(), "expected one line, not several"),
    ];
    for (path, said) in cases {
        // Port 1: a connect would fail with exit 1, not the usage error's 2.
        let output = zkutil_with(&["--zk", "127.0.0.1:1", "--zk-auth-file", path, "ls"], &[]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{path}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains("--zk-auth-file") && stderr.contains(path) && stderr.contains(said),
            "{path}: names the flag, the file and {said:?}: {stderr}"
        );
        assert!(!stderr.contains(PASSWORD), "the content is shown: {stderr}");
        assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    }
}

#[test]
fn a_secret_typed_on_the_command_line_is_warned_about_once_and_one_from_the_environment_is_not() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let credentials = format!("svc:{PASSWORD}");
    for args in [
        &["--zk", &hosts, "--zk-auth", &credentials, "ls"][..],
        &["--zk", &hosts, "ls", "--zk-auth", &credentials],
        // A global flag given before and after the subcommand is parsed twice.
        &[
            "--zk",
            &hosts,
            "--zk-auth",
            &credentials,
            "ls",
            "--zk-auth",
            &credentials,
        ],
    ] {
        let ls = zkutil_with(args, &[]);
        assert!(ls.status.success(), "{}", text(&ls.stderr));
        let warnings = lines_with(&ls, "shown by ps");
        assert_eq!(warnings.len(), 1, "once: {}", text(&ls.stderr));
        assert!(
            warnings[0].contains("--zk-auth on the command line")
                && warnings[0].contains("--zk-auth-file PATH")
                && warnings[0].contains("ZK_AUTH environment variable"),
            "says how to avoid it: {}",
            warnings[0]
        );
        assert!(!text(&ls.stderr).contains(PASSWORD), "{}", text(&ls.stderr));
    }
    let ls = zkutil_with(&["--zk", &hosts, "ls"], &[("ZK_AUTH", &credentials)]);
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    assert_eq!(lines_with(&ls, "warning"), Vec::<String>::new());
}

#[test]
fn zk_auth_and_zk_auth_file_together_are_a_usage_error() {
    let file = SecretFile::new(&format!("svc:{PASSWORD}\n"), 0o600);
    let credentials = format!("ops:{PASSWORD}");
    for (args, envs) in [
        (
            vec![
                "--zk-auth",
                &credentials,
                "--zk-auth-file",
                file.path(),
                "ls",
            ],
            vec![],
        ),
        // The environment counts as given: two secrets, and no guessing
        // which one was meant.
        (
            vec!["ls", "--zk-auth-file", file.path()],
            vec![("ZK_AUTH", credentials.as_str())],
        ),
    ] {
        let mut all = vec!["--zk", "127.0.0.1:1"];
        all.extend(args);
        let output = zkutil_with(&all, &envs);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("cannot be used with"), "{stderr}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");
    }
}

/// An unencrypted TLS key is the client's identity: when its group or
/// others may read it, the same one warning as for a secret file.
#[test]
fn a_group_readable_tls_key_is_warned_about_once_and_a_private_one_is_not() {
    for (mode, warnings) in [(0o644, 1), (0o600, 0)] {
        let key = SecretFile::new("not really a key\n", mode);
        let cert = SecretFile::new("not really a certificate\n", 0o644);
        let status = zkutil_with(
            &[
                "--zk",
                "127.0.0.1:1",
                "--zk-tls-ca",
                cert.path(),
                "--zk-tls-cert",
                cert.path(),
                "--zk-tls-key",
                key.path(),
                "ls",
            ],
            &[],
        );
        let warned = lines_with(&status, &format!("{:?} can be read", key.path()));
        assert_eq!(
            warned.len(),
            warnings,
            "mode {mode:o}: {}",
            text(&status.stderr)
        );
        assert!(!status.status.success(), "no usable TLS files: an error");
    }
}
