//! The aws CLI against a sandbox (a blocking child process: call it from a multi-threaded
//! runtime).

use std::path::PathBuf;

use serde_json::Value;

/// The aws CLI from `scripts/ensure-python-tools` (or `$AWS_CLI`).
pub fn aws_cli() -> PathBuf {
    let path = std::env::var_os("AWS_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/aws")));
    assert!(
        path.exists(),
        "the aws CLI is missing at {}: run scripts/ensure-python-tools (scripts/test does)",
        path.display()
    );
    path
}

/// The aws CLI pointed at a sandbox, run in `dir` (files it reads), with throwaway credentials.
pub struct Cli {
    pub bin: PathBuf,
    pub url: String,
    pub dir: PathBuf,
}

impl Cli {
    /// Runs `aws <args>` and returns its JSON output (Null when it prints nothing).
    pub fn run(&self, args: &[&str]) -> Value {
        let out = std::process::Command::new(&self.bin)
            .args(args)
            .args(["--endpoint-url", &self.url, "--output", "json"])
            .current_dir(&self.dir)
            .env("AWS_ACCESS_KEY_ID", "AKIDSANDBOX")
            .env("AWS_SECRET_ACCESS_KEY", "sandbox-secret")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", self.dir.join("no-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.join("no-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_PAGER", "")
            .output()
            .expect("run the aws CLI");
        assert!(
            out.status.success(),
            "aws {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("CLI prints JSON")
        }
    }
}
