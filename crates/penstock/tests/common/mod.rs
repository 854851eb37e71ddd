//! Running the real `penstock` binary from the tests: a clean environment (only what the
//! test passes, plus PATH) and its output as text.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::HashMap;
use std::process::{Command, Output};

pub fn penstock(env: &HashMap<String, String>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_penstock"));
    cmd.args(args)
        .env_clear()
        .envs(env)
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

pub fn run(env: &HashMap<String, String>, args: &[&str]) -> Output {
    penstock(env, args).output().expect("penstock runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Standard output then standard error.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
