//! Secrets off the command line: the server's identity and the operator's
//! read from files act exactly as the same credentials given as flags,
//! and no part of a password is left where `ps` shows it.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use zkutil::{Secret, SessionConfig};

use crate::support::{ServerProcess, zookeeper};

const PASSWORD: &str = "Fi1e-Pa55word";
const OPERATOR_PASSWORD: &str = "0perat0r-Fi1e";

/// Files holding secrets, with the permission bits given, in a temp dir
/// removed on drop.
struct SecretDir(tempfile::TempDir);

impl SecretDir {
    fn new() -> SecretDir {
        SecretDir(tempfile::tempdir().expect("a temp dir"))
    }

    /// Writes `content` to the file `name` with `mode`; its path.
    fn file(&self, name: &str, content: &str, mode: u32) -> String {
        let path: PathBuf = self.0.path().join(name);
        std::fs::write(&path, content).expect("writes the secret file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .expect("sets its mode");
        path.to_str().expect("a UTF-8 temp path").to_owned()
    }
}

/// What `/proc/PID/<what>` holds (NUL-separated), as text.
fn proc_file(pid: u32, what: &str) -> String {
    let bytes = std::fs::read(format!("/proc/{pid}/{what}"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/{what}: {e}"));
    String::from_utf8_lossy(&bytes).replace('\0', " ")
}

#[test]
fn identities_from_files_get_the_same_acl_as_flags_and_no_password_is_in_cmdline_or_environ() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let secrets = SecretDir::new();
    let auth_file = secrets.file("zk-auth", &format!("svc:{PASSWORD}\n"), 0o600);
    let operator_file = secrets.file("operator", &format!("ops:{OPERATOR_PASSWORD}\n"), 0o600);
    let from_files = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--zk-auth-file",
        &auth_file,
        "--operator-file",
        &operator_file,
        "--listen",
        "127.0.0.1:0",
    ]);
    let name = from_files.registered(1).remove(0);
    let path = format!("/go_servers/{name}");

    // The same identities as flags, under another parent: the ACLs match
    // (ZooKeeper's getAcl masks the digests, so who they are is checked
    // below by acting as them).
    let as_flags = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--zk-auth",
        &format!("svc:{PASSWORD}"),
        "--operator",
        &format!("ops:{OPERATOR_PASSWORD}"),
        "--base-path",
        "/flags",
        "--listen",
        "127.0.0.1:0",
    ]);
    let flags_path = format!("/flags/{}", as_flags.registered(1).remove(0));
    let acl_of = |path: &str| -> Vec<String> {
        let out = zkutil::testing::zk_cli(&hosts, &["getAcl", path]);
        out.lines()
            .map(str::trim)
            .filter(|line| line.starts_with('\'') || line.starts_with(':'))
            .map(str::to_owned)
            .collect()
    };
    let acl = acl_of(&path);
    assert!(
        acl.iter().any(|line| line.starts_with("'digest,'svc:")),
        "{acl:?}"
    );
    assert_eq!(
        acl,
        acl_of(&flags_path),
        "the ACL of {path} and {flags_path}"
    );

    // A stranger cannot delete it; the operator may take it out of rotation.
    let stranger = SessionConfig::new(&hosts).connect().expect("connects");
    match stranger.delete(&path, None) {
        Err(err) if err.is_no_auth() => {}
        other => panic!("a stranger deleting {path}: expected NoAuth, got {other:?}"),
    }
    let operator = SessionConfig::new(&hosts)
        .with_digest_auth(Secret::new(format!("ops:{OPERATOR_PASSWORD}")))
        .connect()
        .expect("connects");
    zkutil::Control::Disable { reason: None }
        .apply_to(
            &operator,
            &zkutil::BasePath::from_static("/go_servers"),
            name.parse().expect("an endpoint"),
        )
        .expect("the operator of --operator-file may disable it");
    // The file's line, its newline trimmed, is the server's own identity.
    let owner = SessionConfig::new(&hosts)
        .with_digest_auth(Secret::new(format!("svc:{PASSWORD}")))
        .connect()
        .expect("connects");
    zkutil::Control::Enable
        .apply_to(
            &owner,
            &zkutil::BasePath::from_static("/go_servers"),
            name.parse().expect("an endpoint"),
        )
        .expect("the identity of --zk-auth-file may enable it");

    let pid = from_files.pid();
    for what in ["cmdline", "environ"] {
        let text = proc_file(pid, what);
        for password in [PASSWORD, OPERATOR_PASSWORD] {
            assert!(!text.contains(password), "/proc/{pid}/{what}: {text}");
        }
    }
    assert!(
        proc_file(pid, "cmdline").contains(&auth_file),
        "the file flag is on the command line"
    );
    let log = from_files.stderr();
    assert!(!log.contains("warning:"), "private files, no flag: {log}");
    assert!(
        !log.contains(PASSWORD) && !log.contains(OPERATOR_PASSWORD),
        "{log}"
    );
    // The flags' own server was told what ps shows, once per flag.
    assert_eq!(
        as_flags.log_count("shown by ps"),
        2,
        "{}",
        as_flags.stderr()
    );
}

#[test]
fn one_group_readable_file_for_both_identities_is_one_warning_and_a_typed_operator_is_another() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let secrets = SecretDir::new();
    let shared = secrets.file("shared", &format!("svc:{PASSWORD}\n"), 0o644);
    let server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--zk-auth-file",
        &shared,
        "--operator-file",
        &shared,
        "--listen",
        "127.0.0.1:0",
    ]);
    server.registered(1);
    let log = server.stderr();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains(&format!("secret file {shared:?} can be read"))
            && warnings[0].contains(&format!("chmod 600 {shared}")),
        "{}",
        warnings[0]
    );

    let private = secrets.file("private", &format!("svc:{PASSWORD}\n"), 0o600);
    let server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--zk-auth-file",
        &private,
        "--operator",
        &format!("ops:{OPERATOR_PASSWORD}"),
        "--base-path",
        "/typed",
        "--listen",
        "127.0.0.1:0",
    ]);
    server.registered(1);
    let log = server.stderr();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("--operator on the command line is shown by ps")
            && warnings[0].contains("--operator-file PATH")
            && warnings[0].contains("TIME_SERVER_OPERATOR environment variable"),
        "{}",
        warnings[0]
    );
    assert!(!log.contains(OPERATOR_PASSWORD), "{log}");
}
