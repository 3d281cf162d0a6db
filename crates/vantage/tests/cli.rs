//! The `vantage` command as a user runs it, with its output redirected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the child when dropped, so a failing test leaves no process behind.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sets the flag when dropped (the child is gone then: the guard must not kill a reused pid).
struct SetOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Runs `vantage sim xprotect` with its standard output (logs included) going to a pipe, and
/// returns everything it printed up to its `READY` line.
fn sim_output() -> String {
    let child = Command::new(env!("CARGO_BIN_EXE_vantage"))
        .args(["sim", "xprotect", "--cameras", "2", "--groups", "2"])
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vantage");
    let mut child = Kill(child);
    let pid = child.0.id();
    // A hang guard, not a timing assertion: a simulator that never gets ready fails the test
    // instead of blocking it.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let guard_done = done.clone();
    std::thread::spawn(move || {
        for _ in 0..1200 {
            std::thread::sleep(Duration::from_millis(100));
            if guard_done.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
        }
        let _ = Command::new("kill").arg(pid.to_string()).status();
    });
    let _done = SetOnDrop(done);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut out = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read output");
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("READY ") {
            return out;
        }
    }
    panic!("no READY line; output:\n{out}");
}

#[test]
fn sim_setup_is_complete_and_logs_to_a_pipe_have_no_colour() {
    let out = sim_output();
    // Logs to a file or a pipe carry no ANSI escape codes.
    assert!(out.contains(" DEBUG "), "no log lines in:\n{out}");
    assert!(!out.contains('\u{1b}'), "ANSI escape codes in:\n{out}");

    // The printed `milestone:` block works alone: it validates, with the method the simulator
    // serves (the Open Network Bridge's `/live/{camera_guid}`).
    let start = out.find("milestone:\n").expect("a milestone block");
    let block: String = out[start..]
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let yaml = format!("agencies: [{{ id: OTHER, max_streams: 10 }}]\n{block}");
    let cfg = settings::load_str(&yaml, Vec::new()).unwrap_or_else(|p| panic!("{p:?}:\n{yaml}"));
    let m = cfg.milestone.expect("milestone");
    assert_eq!(m.method, settings::LiveMethod::OnvifBridge, "{block}");
    assert!(
        m.rtsp_base_url.is_some() && m.recording_server.is_some(),
        "{block}"
    );
    assert_eq!(m.username, "rta-integration");
    assert_eq!(m.password, "sim-password");
}

/// A scratch data dir with a configuration naming it; removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("vantage-cli-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("vantage.yaml"),
            format!(
                "storage: {{ data_dir: \"{}\" }}\nagencies:\n  - {{ id: METRO, max_streams: 10 }}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        Scratch(dir)
    }

    fn config(&self) -> String {
        self.0.join("vantage.yaml").display().to_string()
    }

    fn db(&self) -> std::path::PathBuf {
        self.0.join("data/vantage.db")
    }

    /// Runs `vantage ARGS --config <this>` with `stdin` on its standard input; returns the exit
    /// code, standard output and standard error.
    fn run(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        use std::io::Write as _;
        let mut child = Command::new(env!("CARGO_BIN_EXE_vantage"))
            .args(args)
            .args(["--config", &self.config()])
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file of the database (main file, WAL, shared memory) concatenated.
fn db_bytes(db: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", db.display());
        if let Ok(b) = std::fs::read(p) {
            all.extend(b);
        }
    }
    all
}

#[test]
fn users_api_keys_and_audit_verify() {
    let s = Scratch::new("users");
    let password = "operator-password-1";
    let (code, out, err) = s.run(
        &[
            "user",
            "add",
            "alice",
            "--role",
            "operator",
            "--agency",
            "METRO",
            "--password-stdin",
        ],
        &format!("{password}\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("created user alice (operator; agencies METRO)"),
        "{out}"
    );
    // Names are unique whatever their case; weak passwords are refused with the rule broken.
    let (code, _, err) = s.run(
        &[
            "user",
            "add",
            "ALICE",
            "--role",
            "viewer",
            "--all-agencies",
            "--password-stdin",
        ],
        "another-password\n",
    );
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = s.run(
        &["user", "add", "bob", "--role", "admin", "--password-stdin"],
        "abc12\n",
    );
    assert_eq!(code, 1);
    assert!(err.contains("too short") && !err.contains("abc12"), "{err}");
    let (code, _, err) = s.run(
        &[
            "user", "add", "wall", "--role", "service", "--agency", "METRO",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");

    let (code, out, _) = s.run(&["user", "disable", "alice"], "");
    assert_eq!((code, out.trim()), (0, "user alice disabled"));
    let (code, key, err) = s.run(&["user", "api-key", "wall", "--name", "video wall"], "");
    assert_eq!(code, 0, "{err}");
    let key = key.trim().to_owned();
    assert!(key.starts_with("vk_") && key.len() == 79, "{key}");
    assert!(err.contains("shown once"), "{err}");
    let (code, _, err) = s.run(&["user", "api-key", "alice"], "");
    assert_eq!(code, 1);
    assert!(err.contains("service accounts"), "{err}");

    let (code, list, _) = s.run(&["user", "list"], "");
    assert_eq!(code, 0);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(lines[0].starts_with("USERNAME"), "{list}");
    assert!(
        lines[1].starts_with("alice")
            && lines[1].contains("operator")
            && lines[1].contains("disabled"),
        "{list}"
    );
    assert!(
        lines[2].starts_with("wall") && lines[2].contains("1 active / 1"),
        "{list}"
    );
    assert!(!list.contains("argon2") && !list.contains("vk_"), "{list}");

    // Neither the key's secret nor the password is anywhere in the database files; the key's id
    // is (it is how a presented key is found).
    let secret = &key[36..];
    let bytes = db_bytes(&s.db());
    assert!(
        contains_bytes(&bytes, &key.as_bytes()[3..35]),
        "key id stored"
    );
    assert!(
        !contains_bytes(&bytes, secret.as_bytes()),
        "API key secret stored"
    );
    assert!(
        !contains_bytes(&bytes, password.as_bytes()),
        "password stored"
    );

    // Every change was audited by `cli`, and the chain verifies.
    let db = rusqlite::Connection::open(s.db()).unwrap();
    let actions: Vec<(String, String)> = db
        .prepare("SELECT user_id, action FROM audit_event ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want = [
        "user_create",
        "user_create",
        "user_update",
        "api_key_create",
    ];
    assert_eq!(
        actions,
        want.iter()
            .map(|a| ("cli".to_owned(), (*a).to_owned()))
            .collect::<Vec<_>>()
    );
    let (code, out, err) = s.run(&["audit", "verify"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("audit log intact: 4 rows"), "{out}");

    // Edited directly in SQLite: found, with the row's id.
    db.execute(
        "UPDATE audit_event SET detail = 'nothing happened' WHERE seq = 3",
        [],
    )
    .unwrap();
    let (code, out, _) = s.run(&["audit", "verify"], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN at row 3"), "{out}");

    // Deleted directly in SQLite (on a fresh log): found too.
    let s2 = Scratch::new("users-deleted");
    for name in ["a1", "a2", "a3"] {
        let (code, _, err) = s2.run(
            &["user", "add", name, "--role", "service", "--all-agencies"],
            "",
        );
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(s2.run(&["audit", "verify"], "").0, 0);
    rusqlite::Connection::open(s2.db())
        .unwrap()
        .execute("DELETE FROM audit_event WHERE seq = 2", [])
        .unwrap();
    let (code, out, _) = s2.run(&["audit", "verify"], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN at row 2: deleted"), "{out}");
}
