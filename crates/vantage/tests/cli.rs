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
