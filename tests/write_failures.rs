//! Writes that fail: an output that cannot be written whole (a full disk, a file size limit),
//! a destination that is a directory or lies in a missing one, a temporary directory that is
//! not one, spilling onto a full file system.
//!
//! Each is an error naming the path and the reason, exit status 1, nothing left behind, and
//! an earlier complete file under the destination's name untouched.
//!
//! A full disk is simulated everywhere with a file size limit (`ulimit -f`, with `SIGXFSZ`
//! ignored so that a write past it fails with `EFBIG` instead of killing the process: the
//! same failed `write(2)` a full disk gives, with another error number); where a tmpfs can be
//! mounted (as root), the same cases run again on a 256 KiB one for the real `ENOSPC`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// 0.45 MB as Parquet, 1.5 MB as CSV, 5 MB as JSON, 0.96 MB as `.npy`: past 256 KiB in
/// every format.
const BIG: &str = "SELECT l_orderkey, l_partkey, l_quantity, l_extendedprice FROM lineitem \
                   ORDER BY l_orderkey, l_linenumber";

fn ooc_query(data: &Path, sql: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ooc"));
    command
        .args(["query", "--no-progress", "--data"])
        .arg(data)
        .args(extra)
        .arg(sql);
    command
}

/// `command` run by bash with writes limited to `kib` KiB per file, `SIGXFSZ` ignored.
fn limited(command: &Command, kib: usize) -> Output {
    let mut words = vec![shell_quote(command.get_program().to_str().unwrap())];
    words.extend(command.get_args().map(|a| shell_quote(a.to_str().unwrap())));
    let script = format!("ulimit -f {kib}; trap '' XFSZ; exec {}", words.join(" "));
    Command::new("bash").arg("-c").arg(script).output().unwrap()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn failed_with(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// For each output format: an earlier complete file under the destination, then a run whose
/// writes fail (`run` runs the command under the failure) — an error naming the destination
/// and `reason`, the earlier file intact, no temporary left; then a run that succeeds.
fn outputs_that_cannot_be_written(dir: &Path, run: impl Fn(&Command) -> Output, reason: &str) {
    let data = common::test_data_dir();
    for extension in ["parquet", "csv", "json", "npy"] {
        let destination = dir.join(format!("out.{extension}"));
        let old = ooc_query(
            &data,
            "SELECT 1 AS a",
            &["-o", destination.to_str().unwrap()],
        )
        .output()
        .unwrap();
        assert!(
            old.status.success(),
            "{}",
            String::from_utf8_lossy(&old.stderr)
        );
        let old_bytes = std::fs::read(&destination).unwrap();

        let out = run(&ooc_query(
            &data,
            BIG,
            &["-o", destination.to_str().unwrap()],
        ));
        failed_with(
            &out,
            &[&format!("cannot write {}: {reason}", destination.display())],
        );
        assert_eq!(
            std::fs::read(&destination).unwrap(),
            old_bytes,
            "{extension}"
        );
        assert_eq!(names(dir), vec![format!("out.{extension}")], "{extension}");
        std::fs::remove_file(&destination).unwrap();
    }
}

#[test]
fn an_output_past_a_file_size_limit_is_an_error_and_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    outputs_that_cannot_be_written(dir.path(), |c| limited(c, 256), "File too large");
}

/// A tmpfs of `size` mounted for the test's life; `None` where mounting is not allowed.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status
            .success()
            .then(|| Self(dir.path().to_path_buf(), dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_while_writing_or_spilling_is_an_error_and_leaves_nothing() {
    let Some(tmpfs) = Tmpfs::mount("256k") else {
        // Not root: the file size limit above covers the same failed writes.
        eprintln!("no tmpfs could be mounted; the ENOSPC variant did not run");
        return;
    };
    outputs_that_cannot_be_written(&tmpfs.0, |c| c.clone_output(), "No space left on device");

    // Spilling onto it, full: a sort under a 1 MiB budget cannot write its first run.
    let filler = tmpfs.0.join("filler");
    // Fails once the file system is full, which is the point.
    let _ = std::fs::write(&filler, vec![0u8; 256 << 10]);
    let data = common::test_data_dir();
    let out = ooc_query(
        &data,
        "SELECT l_comment FROM lineitem ORDER BY 1",
        &[
            "--memory-limit",
            "1MB",
            "--temp-dir",
            tmpfs.0.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    failed_with(
        &out,
        &[
            &format!("spilling to {}", tmpfs.0.display()),
            "No space left on device",
        ],
    );
    assert_eq!(names(&tmpfs.0), vec!["filler".to_string()]);
}

/// `Command::output` for a borrowed command (a fresh copy of it).
trait CloneOutput {
    fn clone_output(&self) -> Output;
}

impl CloneOutput for Command {
    fn clone_output(&self) -> Output {
        let mut copy = Command::new(self.get_program());
        copy.args(self.get_args());
        copy.output().unwrap()
    }
}

#[test]
fn paths_that_cannot_be_written_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::test_data_dir();

    let directory = dir.path().join("a-directory.parquet");
    std::fs::create_dir(&directory).unwrap();
    let out = ooc_query(&data, "SELECT 1 AS a", &["-o", directory.to_str().unwrap()])
        .output()
        .unwrap();
    failed_with(
        &out,
        &[&format!(
            "cannot write {}: Is a directory",
            directory.display()
        )],
    );

    let missing = dir.path().join("missing").join("out.csv");
    let out = ooc_query(&data, "SELECT 1 AS a", &["-o", missing.to_str().unwrap()])
        .output()
        .unwrap();
    failed_with(
        &out,
        &[&format!(
            "cannot write {}: No such file or directory",
            missing.display()
        )],
    );

    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let out = ooc_query(
        &data,
        "SELECT l_comment FROM lineitem ORDER BY 1",
        &[
            "--memory-limit",
            "1MB",
            "--temp-dir",
            file.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    failed_with(&out, &[&format!("spilling to {}", file.display())]);

    // A directory this process may not write to (root may write anywhere: then not a case).
    let read_only = dir.path().join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    let mut permissions = std::fs::metadata(&read_only).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
    std::fs::set_permissions(&read_only, permissions).unwrap();
    if std::fs::write(read_only.join("probe"), b"x").is_err() {
        let target = read_only.join("out.parquet");
        let out = ooc_query(&data, "SELECT 1 AS a", &["-o", target.to_str().unwrap()])
            .output()
            .unwrap();
        failed_with(
            &out,
            &[&format!(
                "cannot write {}: Permission denied",
                target.display()
            )],
        );
        assert!(names(&read_only).is_empty());
    }
    assert_eq!(
        names(dir.path()),
        vec!["a-directory.parquet", "not-a-directory", "read-only"]
    );
}
