//! `templates`: the operator's templates, read and compiled once at start
//! (a syntax error stops `zkutil render` before it connects or writes),
//! and rendered from the registry's data.
//!
//! The engine is minijinja (Jinja2's syntax). It is set up for config
//! files rather than HTML: an undefined variable is an error (a typo must
//! not render an empty backend), blocks trim their own line (Ansible's
//! `trim_blocks`), a file keeps its last newline, and escaping follows the
//! template's name (`*.json.j2` escapes for JSON, `*.html` for HTML, the
//! rest not at all). A template's run is bounded by fuel: a loop that
//! never ends is an error, not a hung renderer.

use std::path::{Path, PathBuf};

use anyhow::Context;
use minijinja::{Environment, UndefinedBehavior, Value};

use super::args::TemplateSpec;

/// The largest template file read, and the largest file rendered.
pub const MAX_FILE: usize = 16 * 1024 * 1024;

/// Instructions one render may run (minijinja's fuel): about fifty times
/// what a server line per instance takes over 100,000 instances, and
/// about a second of work.
const FUEL: u64 = 100_000_000;

/// Each destination with its rendered bytes.
pub type Files = Vec<(PathBuf, Vec<u8>)>;

/// The templates and where each renders to.
pub struct Templates {
    env: Environment<'static>,
    /// Each template's name in `env` (its source path) and destination.
    files: Vec<(String, PathBuf)>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("files", &self.files)
            .finish()
    }
}

impl Templates {
    /// Reads and compiles every template.
    ///
    /// # Errors
    ///
    /// The first file that cannot be read, or does not compile: its path,
    /// line and cause.
    pub fn load(specs: &[TemplateSpec]) -> anyhow::Result<Templates> {
        Templates::load_with_fuel(specs, FUEL)
    }

    /// [`Templates::load`] with `fuel` for each render.
    fn load_with_fuel(specs: &[TemplateSpec], fuel: u64) -> anyhow::Result<Templates> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_fuel(Some(fuel));
        env.add_function("env", env_var);
        let mut files = Vec::new();
        for spec in specs {
            let name = spec.source.display().to_string();
            let source =
                read_capped(&spec.source).with_context(|| format!("reading template {name}"))?;
            env.add_template_owned(name.clone(), source)
                .map_err(|err| anyhow::anyhow!(describe(&err)))?;
            files.push((name, spec.dest.clone()));
        }
        Ok(Templates { env, files })
    }

    /// The destinations, in the order given.
    pub fn destinations(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(_, dest)| dest.as_path())
    }

    /// Renders every template with `context`: each destination with its
    /// bytes.
    ///
    /// # Errors
    ///
    /// The first template that fails (an undefined variable, a filter's
    /// error, its fuel spent, an output over [`MAX_FILE`]): its
    /// destination, and its path, line and cause.
    pub fn render(&self, context: &Value) -> Result<Files, (PathBuf, String)> {
        let mut rendered = Vec::with_capacity(self.files.len());
        for (name, dest) in &self.files {
            let failed = |why: String| (dest.clone(), why);
            let template = self
                .env
                .get_template(name)
                .map_err(|err| failed(describe(&err)))?;
            let text = template
                .render(context)
                .map_err(|err| failed(describe(&err)))?;
            if text.len() > MAX_FILE {
                return Err(failed(format!(
                    "{name}: rendered {} bytes, over the {} MiB limit",
                    text.len(),
                    MAX_FILE / (1024 * 1024)
                )));
            }
            rendered.push((dest.clone(), text.into_bytes()));
        }
        Ok(rendered)
    }
}

/// A template error as one line: `FILE:LINE: cause`.
fn describe(err: &minijinja::Error) -> String {
    let place = match (err.name(), err.line()) {
        (Some(name), Some(line)) => format!("{name}:{line}: "),
        (Some(name), None) => format!("{name}: "),
        _ => String::new(),
    };
    let cause = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    let mut text = format!("{place}{cause}");
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

/// A file's text, refused over [`MAX_FILE`].
fn read_capped(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_FILE as u64 + 1).read_to_string(&mut text)?;
    anyhow::ensure!(
        text.len() <= MAX_FILE,
        "over the {} MiB limit",
        MAX_FILE / (1024 * 1024)
    );
    Ok(text)
}

/// `env("NAME")`, or `env("NAME", "default")`: an environment variable,
/// for what a template leaves to its deployment (a bind address, a
/// certificate path). Unset and no default: an error, not an empty string.
fn env_var(name: String, default: Option<String>) -> Result<String, minijinja::Error> {
    match (std::env::var(&name), default) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(default)) => Ok(default),
        (Err(_), None) => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!(
                "environment variable {name} is not set (env(\"{name}\", \"default\") gives one)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, text: &str) -> TemplateSpec {
        let source = dir.join("t.cfg.j2");
        std::fs::write(&source, text).expect("the template written");
        TemplateSpec {
            source,
            dest: dir.join("out.cfg"),
        }
    }

    #[test]
    fn a_syntax_error_names_the_file_and_line() {
        let dir = tempfile::tempdir().expect("a folder");
        let err = Templates::load(&[spec(dir.path(), "ok\nok\n{% for x in %}\n")])
            .expect_err("a syntax error");
        let text = format!("{err:#}");
        assert!(text.contains("t.cfg.j2:3:"), "{text}");
        assert!(text.contains("syntax error"), "{text}");
    }

    #[test]
    fn an_undefined_variable_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().expect("a folder");
        let templates = Templates::load(&[spec(dir.path(), "a\n{{ servcies }}\n")]).expect("loads");
        let err = templates
            .render(&Value::from_serialize(serde_json::json!({})))
            .expect_err("undefined")
            .1;
        assert!(err.contains("t.cfg.j2:2:"), "{err}");
        assert!(err.contains("undefined"), "{err}");
    }

    #[test]
    fn blocks_trim_their_line_and_the_last_newline_stays() {
        let dir = tempfile::tempdir().expect("a folder");
        let templates = Templates::load(&[spec(
            dir.path(),
            "backend b\n  {% for s in xs %}\n  server {{ s }}\n  {% endfor %}\n",
        )])
        .expect("loads");
        let out = templates
            .render(&Value::from_serialize(serde_json::json!({"xs": [1, 2]})))
            .expect("renders");
        assert_eq!(
            String::from_utf8_lossy(&out[0].1),
            "backend b\n  server 1\n  server 2\n"
        );
    }

    #[test]
    fn a_loop_that_never_ends_runs_out_of_fuel() {
        let dir = tempfile::tempdir().expect("a folder");
        // Little fuel, for a quick test: the mechanism is the same.
        let templates = Templates::load_with_fuel(
            &[spec(
                dir.path(),
                "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}",
            )],
            100_000,
        )
        .expect("loads");
        let err = templates
            .render(&Value::from_serialize(serde_json::json!({})))
            .expect_err("out of fuel")
            .1;
        assert!(err.contains("fuel"), "{err}");
    }
}
