//! `layout`: where each registry format's nodes go.
//!
//! A reader of a parent node lists its children and takes each one for an
//! instance. So one format's nodes must never land among another format's
//! instances: Curator's service parent `/go_servers/time` inside the plain
//! base path is a child named `time` to every reader of `/go_servers` (the
//! post's Go client picks it and dies on `address time: missing port in
//! address`), and a serverset's `member_…` nodes there are the same. Each
//! format therefore has its own root, defaulting to its ecosystem's
//! convention, and a layout that would nest one format's parent among
//! another's instances is refused before anything is registered.

use crate::base_path::BasePath;
use crate::error::{Error, Result};
use crate::format::{Format, Root};
use crate::registry::Registrar;

/// The root of each format: plain instances under `plain`, Curator and
/// Spring services under `curator` (`<curator>/<service>/<id>`), serverset
/// members under `serverset`, which has no default: a serverset path names
/// one service (`/aurora/time`), so it is always given.
///
/// # Example
///
/// ```
/// use zkutil::{BasePath, Format, Layout};
/// let layout = Layout::new(BasePath::new("/go_servers")?);
/// // Plain nodes under /go_servers, Curator's service "time" under /services/time.
/// let parents: Vec<String> = layout
///     .registrars(&[Format::Plain, Format::Curator], "time")
///     .expect("a layout that nests nothing")
///     .iter()
///     .map(|r| r.parent())
///     .collect();
/// assert_eq!(parents, ["/go_servers", "/services/time"]);
/// // Curator's services inside the plain base path: refused, naming both paths.
/// let nested = layout.with_curator(BasePath::new("/go_servers")?);
/// let err = nested.registrars(&[Format::Plain, Format::Curator], "time").expect_err("nested");
/// assert!(err.to_string().contains("/go_servers/time") && err.to_string().contains("under /go_servers"));
/// # Ok::<(), zkutil::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    plain: BasePath,
    curator: BasePath,
    serverset: Option<BasePath>,
}

impl Layout {
    /// The default root of Curator and Spring services: Spring Cloud
    /// Zookeeper's default (`spring.cloud.zookeeper.discovery.root`), also
    /// what Curator's examples and Dubbo's users commonly take.
    pub const CURATOR_DEFAULT: &'static str = "/services";

    /// Plain instances under `plain`; the other roots at their defaults.
    pub fn new(plain: BasePath) -> Layout {
        Layout {
            plain,
            curator: BasePath::from_static(Layout::CURATOR_DEFAULT),
            serverset: None,
        }
    }

    /// Curator and Spring services under `root` (`<root>/<service>/<id>`).
    pub fn with_curator(mut self, root: BasePath) -> Layout {
        self.curator = root;
        self
    }

    /// Serverset members under `path` (`<path>/member_…`).
    pub fn with_serverset(mut self, path: Option<BasePath>) -> Layout {
        self.serverset = path;
        self
    }

    /// The plain base path.
    pub fn plain(&self) -> &BasePath {
        &self.plain
    }

    /// The root `format` registers under.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a serverset without a path.
    pub fn root(&self, format: Format) -> Result<&BasePath> {
        match format.root() {
            Root::Plain => Ok(&self.plain),
            Root::Curator => Ok(&self.curator),
            Root::Serverset => self.serverset.as_ref().ok_or_else(|| {
                Error::invalid(
                    "layout",
                    "serverset",
                    "a serverset needs its own path (such as /aurora/time): its member_ nodes must not land among other instances",
                )
            }),
        }
    }

    /// One [`Registrar`] per format, `service` naming Curator and Spring
    /// services, after checking that no registered format's parent lands
    /// among another format's instances, nor theirs among ours: not the
    /// same node, not below it. "Another format" is every root of this
    /// layout, registered by this process or not: a plain fleet lives under
    /// the plain base path (`/go_servers` in the binaries) whether or
    /// not we register plain ourselves, so `--format curator
    /// --curator-base-path /go_servers` would put a `time` node among its
    /// instances all the same.
    ///
    /// # Errors
    ///
    /// [`Error::Nested`] naming both paths; [`Error::InvalidArgument`] for
    /// a serverset without a path, an invalid service name, or two formats
    /// that write the same node, such as Curator and Spring (one instance
    /// id, one node: they would fight over it).
    pub fn registrars(&self, formats: &[Format], service: &str) -> Result<Vec<Registrar>> {
        for (index, &a) in formats.iter().enumerate() {
            if let Some(&b) = formats[index + 1..]
                .iter()
                .find(|&&b| b != a && same_nodes(a, b))
            {
                let (first, second) = (a.min(b), a.max(b));
                return Err(Error::invalid(
                    "format",
                    &format!("{first},{second}"),
                    format!(
                        "both write the same node ({}): use one of them",
                        a.root().node_shape()
                    ),
                ));
            }
        }
        let mut registrars: Vec<Registrar> = Vec::with_capacity(formats.len());
        for &format in formats {
            let registrar = Registrar::new(self.root(format)?.clone())
                .format(format)?
                .service(service)?;
            if registrars.iter().any(|r| r.registry_format() == format) {
                continue;
            }
            registrars.push(registrar);
        }
        // Every fleet's parent: ours where we register, the layout's
        // otherwise (a fleet we do not register may still be there).
        let mut fleets: Vec<(Format, String)> = registrars
            .iter()
            .map(|r| (r.registry_format(), r.parent()))
            .collect();
        for (format, parent) in self.fleets(service) {
            // Curator's root is `/services` by default, whether or not a
            // Curator fleet lives there: a plain fleet under it (a long-used
            // `--base-path /services/time`) is only nested when we register
            // Curator ourselves. The plain base path and an explicit
            // serverset path are where their readers are.
            let unknown_curator = format.root() == Root::Curator;
            if !unknown_curator && !fleets.iter().any(|(f, _)| same_nodes(*f, format)) {
                fleets.push((format, parent));
            }
        }
        // Each registered parent against the ones registered before it (as
        // they are named on the command line) and against every fleet we
        // do not register; ours is named as the one misplaced first.
        for (index, registrar) in registrars.iter().enumerate() {
            let (format, parent) = (registrar.registry_format(), registrar.parent());
            let others = fleets[..index].iter().chain(&fleets[registrars.len()..]);
            for (other, theirs) in others {
                if same_nodes(format, *other) {
                    continue;
                }
                for (inner, inner_format, outer, outer_format) in [
                    (&parent, format, theirs, *other),
                    (theirs, *other, &parent, format),
                ] {
                    if inner == outer || inner.starts_with(&format!("{outer}/")) {
                        return Err(Error::Nested {
                            format: inner_format,
                            parent: inner.clone(),
                            among: outer_format,
                            base: outer.clone(),
                        });
                    }
                }
            }
        }
        Ok(registrars)
    }

    /// The parent of each root's instances in this layout, whoever
    /// registers them, named by the first format living there: plain under
    /// its base path, Curator (and Spring, the same nodes) under
    /// `<curator>/<service>`, serverset members under its path when one is
    /// given.
    fn fleets(&self, service: &str) -> Vec<(Format, String)> {
        let mut roots = vec![(Root::Plain, &self.plain), (Root::Curator, &self.curator)];
        if let Some(serverset) = &self.serverset {
            roots.push((Root::Serverset, serverset));
        }
        roots
            .into_iter()
            .filter_map(|(root, base)| {
                let format = Format::ALL.into_iter().find(|f| f.root() == root)?;
                Some((format, root.parent(base, service)))
            })
            .collect()
    }
}

/// Whether formats `a` and `b` write the same kind of node under the same
/// parent (they share a root, as Curator and Spring share one
/// `ServiceInstance` layout), so that one sharing the other's parent is no
/// nesting.
fn same_nodes(a: Format, b: Format) -> bool {
    a.root() == b.root()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parents(layout: &Layout, formats: &[Format]) -> Result<Vec<String>> {
        Ok(layout
            .registrars(formats, "time")?
            .iter()
            .map(Registrar::parent)
            .collect())
    }

    fn base(path: &str) -> BasePath {
        BasePath::new(path).expect("a valid literal")
    }

    #[test]
    fn each_format_defaults_to_its_own_root() {
        let layout = Layout::new(base("/go_servers")).with_serverset(Some(base("/aurora/time")));
        assert_eq!(
            parents(&layout, &[Format::Plain, Format::Spring, Format::Serverset])
                .expect("nothing nested"),
            ["/go_servers", "/services/time", "/aurora/time"]
        );
    }

    #[test]
    fn a_parent_among_another_formats_instances_is_refused_naming_both() {
        for (layout, formats, message) in [
            (
                Layout::new(base("/go_servers")).with_curator(base("/go_servers")),
                vec![Format::Plain, Format::Curator],
                "curator parent /go_servers/time would sit among the plain instances under /go_servers",
            ),
            (
                Layout::new(base("/services/time/x")),
                vec![Format::Curator, Format::Plain],
                "plain parent /services/time/x would sit among the curator instances under /services/time",
            ),
            (
                Layout::new(base("/go_servers")).with_serverset(Some(base("/go_servers"))),
                vec![Format::Plain, Format::Serverset],
                "serverset parent /go_servers would sit among the plain instances under /go_servers",
            ),
        ] {
            let err = parents(&layout, &formats).expect_err("nested");
            assert!(err.to_string().starts_with(message), "{err}");
        }
    }

    #[test]
    fn a_serverset_needs_its_own_path() {
        let err =
            parents(&Layout::new(base("/go_servers")), &[Format::Serverset]).expect_err("no path");
        assert!(err.to_string().contains("its own path"), "{err}");
    }

    /// A format registered alone still has the plain fleet (and any other
    /// root of the layout) to keep out of: the seed Go servers live under
    /// `/go_servers` whether or not this process registers plain.
    #[test]
    fn one_format_alone_is_checked_against_every_root_of_the_layout() {
        for (layout, format, message) in [
            (
                Layout::new(base("/go_servers")).with_curator(base("/go_servers")),
                Format::Curator,
                "curator parent /go_servers/time would sit among the plain instances under /go_servers",
            ),
            (
                Layout::new(base("/go_servers")).with_serverset(Some(base("/go_servers"))),
                Format::Serverset,
                "serverset parent /go_servers would sit among the plain instances under /go_servers",
            ),
            (
                Layout::new(base("/go_servers")).with_serverset(Some(base("/go_servers/time"))),
                Format::Serverset,
                "serverset parent /go_servers/time would sit among the plain instances under /go_servers",
            ),
        ] {
            let err = parents(&layout, &[format]).expect_err("nested");
            assert!(err.to_string().starts_with(message), "{err}");
        }
        // Each in its own place: accepted.
        let layout = Layout::new(base("/go_servers"))
            .with_curator(base("/discovery"))
            .with_serverset(Some(base("/aurora/time")));
        for format in [Format::Plain, Format::Spring, Format::Serverset] {
            parents(&layout, &[format]).expect("nothing nested");
        }
        // Curator's default root is no fleet of its own: a plain or a
        // serverset fleet under `/services` is fine unless we register
        // Curator too.
        parents(&Layout::new(base("/services/time")), &[Format::Plain]).expect("a plain fleet");
        parents(&Layout::new(base("/services")), &[Format::Plain]).expect("a plain fleet");
        let serverset =
            Layout::new(base("/go_servers")).with_serverset(Some(base("/services/time")));
        parents(&serverset, &[Format::Serverset]).expect("a serverset fleet");
        let err = parents(
            &Layout::new(base("/services")),
            &[Format::Plain, Format::Curator],
        )
        .expect_err("both registered: nested");
        assert!(err.to_string().contains("/services/time"), "{err}");
    }
}
