//! `write`: a rendered file put in place so that no reader ever sees a
//! half of it, and nothing changes when nothing did.
//!
//! The new bytes go to a temporary file in the destination's folder (a
//! rename within one file system is atomic), with the destination's mode
//! and owner (0644 for a new file), are synced, optionally checked by the
//! operator's command, renamed over the destination, and the folder is
//! synced so that the rename survives a crash. A destination that is a
//! symbolic link has its target replaced, the link kept. Bytes equal to the
//! file's are not written at all: no write, no reload.

use std::fs::{File, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use zkutil::cli::command::{self, End};

use super::templates::MAX_FILE;

/// The mode of a file rendered for the first time.
const NEW_FILE_MODE: u32 = 0o644;

/// What a render did to one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrote {
    /// Its bytes were already the file's.
    Unchanged,
    /// The file was replaced.
    Written,
}

/// A destination not replaced, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The operator's check failed on the new file.
    Check(String),
    /// Writing, syncing or renaming failed.
    Write(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Check(why) => write!(f, "the check refused it: {why}"),
            Refused::Write(why) => f.write_str(why),
        }
    }
}

/// `--check`: the command and how long it may take.
#[derive(Debug, Clone)]
pub struct Check {
    /// `{}` stands for the new file's path.
    pub command: String,
    pub timeout: Duration,
}

/// Puts `bytes` in place at `dest`, unless they are its bytes already.
///
/// # Errors
///
/// [`Refused`]: the old file (if any) is left as it was.
/// With `owed` (an `--exec` command follows writes), the destination's
/// [`owed_marker`] is made before the rename and left for the command's
/// runner to remove once it passed: a command owed for a write is never
/// forgotten, even when this process stops before it ran.
pub fn install(
    dest: &Path,
    bytes: &[u8],
    check: Option<&Check>,
    owed: bool,
) -> Result<Wrote, Refused> {
    let target = resolve(dest);
    if current(&target).as_deref() == Some(bytes) {
        return Ok(Wrote::Unchanged);
    }
    let failed = |what: &str, err: &dyn std::fmt::Display| {
        Refused::Write(format!("{what} {}: {err}", target.display()))
    };
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".zkutil-render")
        .tempfile_in(&folder)
        .map_err(|err| failed("creating a temporary file beside", &err))?;
    temp.write_all(bytes)
        .map_err(|err| failed("writing the new", &err))?;
    keep_mode_and_owner(temp.as_file(), &target).map_err(Refused::Write)?;
    temp.as_file()
        .sync_all()
        .map_err(|err| failed("syncing the new", &err))?;
    if let Some(check) = check {
        let path = temp.path().display().to_string();
        let dest_text = target.display().to_string();
        let command = check.command.replace("{}", &shell_quoted(&path));
        let ran = command::run(
            &command,
            check.timeout,
            &[
                ("ZKUTIL_RENDER_FILE", path.as_str()),
                ("ZKUTIL_RENDER_DEST", dest_text.as_str()),
            ],
            End::Always,
        );
        ran.result.map_err(Refused::Check)?;
    }
    if owed {
        File::create(owed_marker(&target))
            .and_then(|marker| marker.sync_all())
            .map_err(|err| failed("marking a command owed for", &err))?;
    }
    temp.persist(&target)
        .map_err(|err| failed("renaming the new file over", &err.error))?;
    // The rename is durable once the folder is synced.
    if let Err(err) = File::open(&folder).and_then(|folder| folder.sync_all()) {
        tracing::warn!(folder = %folder.display(), error = %err, "cannot sync the folder after a rename");
    }
    Ok(Wrote::Written)
}

/// The file `dest` names: a symbolic link's target, followed link by link
/// even when the last one dangles (a config managed by links, as
/// Kubernetes mounts them, keeps its link; a link to a file not rendered
/// yet gets it).
pub fn resolve(dest: &Path) -> PathBuf {
    let mut path = dest.to_path_buf();
    // As the kernel does, at most 40 links.
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        path = match path.parent() {
            Some(parent) if target.is_relative() => parent.join(target),
            _ => target,
        };
    }
    path
}

/// The file that says an `--exec` command is owed for a write of `dest`
/// (`.NAME.zkutil-render-exec-owed` beside it).
pub fn owed_marker(dest: &Path) -> PathBuf {
    let target = resolve(dest);
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.zkutil-render-exec-owed"))
}

/// One spelling per file: `dest` resolved, its folder canonical (`./a`,
/// `a`, `x/../a` and a link to `a` are one file).
pub fn identity(dest: &Path) -> PathBuf {
    let target = resolve(dest);
    let canonical = target.parent().and_then(|parent| {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        Some(
            std::fs::canonicalize(parent)
                .ok()?
                .join(target.file_name()?),
        )
    });
    canonical.unwrap_or_else(|| std::path::absolute(&target).unwrap_or(target))
}

/// The file's bytes, when it is there, readable and not over [`MAX_FILE`].
fn current(path: &Path) -> Option<Vec<u8>> {
    let file = File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE as u64 + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() <= MAX_FILE).then_some(bytes)
}

/// Gives `temp` the mode and owner of `target`, or 0644 when there is no
/// target yet.
fn keep_mode_and_owner(temp: &File, target: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::metadata(target) else {
        return temp
            .set_permissions(Permissions::from_mode(NEW_FILE_MODE))
            .map_err(|err| format!("setting the mode of the new {}: {err}", target.display()));
    };
    temp.set_permissions(Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|err| format!("keeping the mode of {}: {err}", target.display()))?;
    let mine = temp
        .metadata()
        .map_err(|err| format!("reading the new file's owner: {err}"))?;
    if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid()) {
        std::os::unix::fs::fchown(temp, Some(meta.uid()), Some(meta.gid())).map_err(|err| {
            format!(
                "keeping the owner of {} ({}:{}): {err}",
                target.display(),
                meta.uid(),
                meta.gid()
            )
        })?;
        // A change of owner clears set-id bits: the mode again.
        temp.set_permissions(Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|err| format!("keeping the mode of {}: {err}", target.display()))?;
    }
    Ok(())
}

/// `text` as one shell word.
fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_written_with_0644_and_the_same_bytes_are_not_written_again() {
        let dir = tempfile::tempdir().expect("a folder");
        let dest = dir.path().join("haproxy.cfg");
        assert_eq!(install(&dest, b"one\n", None, false), Ok(Wrote::Written));
        let meta = std::fs::metadata(&dest).expect("written");
        assert_eq!(meta.mode() & 0o777, 0o644);
        let inode = meta.ino();
        assert_eq!(install(&dest, b"one\n", None, false), Ok(Wrote::Unchanged));
        assert_eq!(std::fs::metadata(&dest).expect("there").ino(), inode);
    }

    #[test]
    fn a_replaced_file_keeps_its_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("a folder");
        let dest = dir.path().join("upstream.conf");
        std::fs::write(&dest, "old").expect("written");
        std::fs::set_permissions(&dest, Permissions::from_mode(0o640)).expect("chmod");
        assert_eq!(install(&dest, b"new", None, false), Ok(Wrote::Written));
        assert_eq!(std::fs::read(&dest).expect("read"), b"new");
        let meta = std::fs::metadata(&dest).expect("there");
        assert_eq!(meta.mode() & 0o777, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listed")
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("upstream.conf")]);
    }

    #[test]
    fn a_failing_check_keeps_the_old_file_and_sees_the_new_one() {
        let dir = tempfile::tempdir().expect("a folder");
        let dest = dir.path().join("x y.cfg");
        std::fs::write(&dest, "old").expect("written");
        let check = Check {
            command: "grep -q good {} || { echo \"bad config in $ZKUTIL_RENDER_DEST\"; exit 3; }"
                .into(),
            timeout: Duration::from_secs(5),
        };
        let refused = install(&dest, b"evil", Some(&check), false).expect_err("refused");
        let Refused::Check(why) = refused else {
            panic!("{refused:?}")
        };
        assert!(why.contains("exit status: 3"), "{why}");
        assert!(why.contains("bad config in"), "{why}");
        assert_eq!(std::fs::read(&dest).expect("read"), b"old");
        assert_eq!(
            install(&dest, b"good", Some(&check), false),
            Ok(Wrote::Written)
        );
        assert_eq!(std::fs::read(&dest).expect("read"), b"good");
    }

    #[test]
    fn a_symbolic_link_keeps_pointing_at_the_rendered_file() {
        let dir = tempfile::tempdir().expect("a folder");
        let real = dir.path().join("real.cfg");
        std::fs::write(&real, "old").expect("written");
        let link = dir.path().join("link.cfg");
        std::os::unix::fs::symlink(&real, &link).expect("linked");
        assert_eq!(install(&link, b"new", None, false), Ok(Wrote::Written));
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("there")
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).expect("read"), b"new");
    }

    #[test]
    fn a_dangling_symbolic_link_gets_its_target_written() {
        let dir = tempfile::tempdir().expect("a folder");
        let real = dir.path().join("real.cfg");
        let link = dir.path().join("link.cfg");
        std::os::unix::fs::symlink("real.cfg", &link).expect("linked");
        assert_eq!(install(&link, b"new", None, false), Ok(Wrote::Written));
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("there")
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).expect("read"), b"new");
    }

    #[test]
    fn one_file_has_one_identity_however_spelled() {
        let dir = tempfile::tempdir().expect("a folder");
        let a = dir.path().join("a.cfg");
        std::fs::create_dir(dir.path().join("x")).expect("a folder");
        std::os::unix::fs::symlink(&a, dir.path().join("l.cfg")).expect("linked");
        let same = [
            dir.path().join("./a.cfg"),
            dir.path().join("x/../a.cfg"),
            dir.path().join("l.cfg"),
        ];
        for path in same {
            assert_eq!(identity(&path), identity(&a), "{}", path.display());
        }
        assert_ne!(identity(&dir.path().join("b.cfg")), identity(&a));
    }
}
