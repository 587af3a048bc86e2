//! `args`: the command line of `zkutil render`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;

/// `zkutil render`'s flags.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// A template and the file it renders to (repeatable): Jinja2 syntax (minijinja), see
    /// docs/render.md for the data it gets. Every template is read and checked before anything
    /// is written.
    #[arg(long = "template", value_name = "SRC:DEST", required = true)]
    pub templates: Vec<TemplateSpec>,
    /// A base path whose instances the templates get (repeatable; the services list keeps this
    /// order). Default: --base-path.
    #[arg(long = "path", value_name = "BASE_PATH", env = "ZKUTIL_RENDER_PATH",
          value_delimiter = ',', value_parser = base_path)]
    pub paths: Vec<zkutil::BasePath>,
    /// Validates each new file before it replaces the old one (`{}` is the new file's path,
    /// also in $ZKUTIL_RENDER_FILE; the destination is in $ZKUTIL_RENDER_DEST); a failure keeps
    /// the old file. Example: 'haproxy -c -f {}'.
    #[arg(long, value_name = "COMMAND", env = "ZKUTIL_RENDER_CHECK")]
    pub check: Option<String>,
    /// Runs after the files a render changed are in place (once per render, never two at once;
    /// a failure is retried with backoff while renders go on). Example: 'systemctl reload
    /// haproxy'.
    #[arg(long, value_name = "COMMAND", env = "ZKUTIL_RENDER_EXEC")]
    pub exec: Option<String>,
    /// How long --check and --exec may run before their process group is killed.
    #[arg(long, env = "ZKUTIL_RENDER_COMMAND_TIMEOUT", default_value = "30s",
          value_parser = zkutil::cli::timeout)]
    pub command_timeout: Duration,
    /// Quiescence, as consul-template's: render once no change came for MIN, and at most MAX
    /// after the first change of a burst (default MAX: 4 x MIN). 0s renders every change.
    #[arg(
        long,
        value_name = "MIN[:MAX]",
        env = "ZKUTIL_RENDER_WAIT",
        default_value = "0s"
    )]
    pub wait: Wait,
    /// Render a base path with no instance in rotation (by default its last file is kept: an
    /// empty backend is more often a fault than the truth).
    #[arg(long, env = "ZKUTIL_RENDER_ALLOW_EMPTY", value_parser = zkutil::cli::env_flag())]
    pub allow_empty: bool,
    /// Render once and exit: 0 when every file is in place (and --exec passed), 1 otherwise.
    #[arg(long)]
    pub once: bool,
    /// Serve Prometheus metrics (renders, unchanged renders, failures, command failures, the age
    /// of the last successful render) and /healthz (200 while ZooKeeper is connected) here.
    #[arg(long, env = "ZKUTIL_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

fn base_path(text: &str) -> Result<zkutil::BasePath, String> {
    zkutil::BasePath::new(text.trim()).map_err(|err| err.to_string())
}

/// `--template SRC:DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSpec {
    /// The template file.
    pub source: PathBuf,
    /// The file it renders to.
    pub dest: PathBuf,
}

impl FromStr for TemplateSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<TemplateSpec, String> {
        // The last colon: a source path may hold one, a destination rarely.
        let (source, dest) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?}: expected SRC:DEST"))?;
        if source.is_empty() || dest.is_empty() {
            return Err(format!("{text:?}: expected SRC:DEST, both paths"));
        }
        if dest.ends_with('/') {
            return Err(format!("{dest:?}: the destination must be a file"));
        }
        Ok(TemplateSpec {
            source: source.into(),
            dest: dest.into(),
        })
    }
}

/// `--wait MIN[:MAX]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// A render waits for this much quiet.
    pub min: Duration,
    /// ... but no longer than this after the first change.
    pub max: Duration,
}

impl FromStr for Wait {
    type Err = String;

    fn from_str(text: &str) -> Result<Wait, String> {
        let (min, max) = match text.split_once(':') {
            Some((min, max)) => (
                zkutil::cli::duration(min)?,
                Some(zkutil::cli::duration(max)?),
            ),
            None => (zkutil::cli::duration(text)?, None),
        };
        let max = max.unwrap_or(min.saturating_mul(4));
        if max < min {
            return Err(format!("{text:?}: MAX must not be below MIN"));
        }
        Ok(Wait { min, max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_spec_splits_at_its_last_colon() {
        let spec: TemplateSpec = "a:b.tmpl:/etc/haproxy/haproxy.cfg".parse().expect("a spec");
        assert_eq!(spec.source, PathBuf::from("a:b.tmpl"));
        assert_eq!(spec.dest, PathBuf::from("/etc/haproxy/haproxy.cfg"));
        assert!("no-colon".parse::<TemplateSpec>().is_err());
        assert!(":dest".parse::<TemplateSpec>().is_err());
        assert!("src:/etc/".parse::<TemplateSpec>().is_err());
    }

    #[test]
    fn a_wait_takes_four_times_its_minimum_unless_told() {
        let wait: Wait = "500ms".parse().expect("a wait");
        assert_eq!(wait.max, Duration::from_secs(2));
        let wait: Wait = "500ms:3s".parse().expect("a wait");
        assert_eq!(
            (wait.min, wait.max),
            (Duration::from_millis(500), Duration::from_secs(3))
        );
        assert!("2s:1s".parse::<Wait>().is_err());
        assert!("soon".parse::<Wait>().is_err());
    }
}
